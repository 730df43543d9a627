"""``autotrace check`` with a credentials file it cannot read (review 16, critique 2): a path
misspelt, a file not deployed, or one that is no valid TOML. None of its tenants can be listed, so
only the default keys were checked and the run passed (exit 0), while every tenant's spans would be
dropped (``spans_dropped.credentials_failed``). The file is now a failed check of its own. Against
a loopback Langfuse stand-in (``OtlpReceiver``) over real sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotrace import cli
from autotrace.export.credentials import ChainCredentials, EnvCredentials
from autotrace.export.credentials_file import FileCredentials
from autotrace.testing.otlp_receiver import OtlpReceiver


@pytest.mark.parametrize("content, why", [(None, "cannot be read: FileNotFoundError"),
                                          ("[tenants\n", "is invalid: TOML syntax error")])
def test_a_credentials_file_never_read_fails_the_check(
        rx: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        content: str | None, why: str) -> None:
    path = tmp_path / "tenants.toml"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("LANGFUSE_HOST", rx.url)
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-default")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-default")
    monkeypatch.setenv("AUTOTRACE_CREDENTIALS_FILE", str(path))
    code = cli.main(["check"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert [line.split()[:2] for line in lines[:-1]] == [["ok", "default"], ["failed", "credentials"]]
    assert lines[1].endswith(f"the credentials lookup failed (credentials file {path} {why})")
    assert lines[-1] == "1 ok, 1 failed"


def test_a_file_in_a_chain_is_reported_only_while_it_was_never_read(tmp_path: Path) -> None:
    from autotrace.export.key_check import files_to_report

    path = tmp_path / "tenants.toml"
    chain = ChainCredentials(EnvCredentials(environ={}), FileCredentials(path, reload_interval=0, environ={}))
    assert [(name, str(failed)) for name, failed in files_to_report(chain)] == [
        ("credentials file", f"credentials file {path} cannot be read: FileNotFoundError")]
    path.write_text('[tenants.acme]\npublic_key = "pk"\nsecret_key = "sk"\n')
    assert files_to_report(chain) == []
    assert chain.configured_tenants() == ["acme"]
    path.unlink()  # gone after a good read: its last good keys still serve, nothing to report
    assert files_to_report(chain) == []
