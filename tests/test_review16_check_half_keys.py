"""``autotrace check`` lists a tenant given half its keys (a secret's variable misspelt or unset),
which exports cannot use (its spans are dropped, ``spans_dropped.credentials_failed``): it is
checked and fails, rather than left out of a run that then passes. Against a loopback Langfuse
stand-in (``OtlpReceiver``) over real sockets."""

from __future__ import annotations

from pathlib import Path

import pytest

from autotrace import cli
from autotrace.export.credentials import ChainCredentials, EnvCredentials
from autotrace.export.credentials_file import FileCredentials
from autotrace.testing.otlp_receiver import OtlpReceiver

GOOD = ("pk-lf-acme", "sk-lf-acme-s3cret")


def test_a_tenant_with_half_its_keys_in_the_environment_is_checked_and_fails(
        rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LANGFUSE_HOST", rx.url)
    monkeypatch.setenv("AUTOTRACE_TENANT_ACME_PUBLIC_KEY", GOOD[0])
    monkeypatch.setenv("AUTOTRACE_TENANT_ACME_SECRET_KEY", GOOD[1])
    monkeypatch.setenv("AUTOTRACE_TENANT_GLOBEX_PUBLIC_KEY", "pk-lf-globex")
    monkeypatch.setenv("AUTOTRACE_TENANT_GLOBEX_SECRETKEY", "sk-lf-globex")  # misspelt: globex has no secret
    code = cli.main(["check"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert [line.split()[:2] for line in lines[:-1]] == [["ok", "acme"], ["failed", "globex"]]
    assert lines[-1] == "1 ok, 1 failed"


def test_listing_for_exports_keeps_to_usable_keys_and_for_checks_names_every_configured_tenant(tmp_path: Path) -> None:
    env = {"AUTOTRACE_TENANT_ACME_PUBLIC_KEY": "pk", "AUTOTRACE_TENANT_ACME_SECRET_KEY": "sk",
           "AUTOTRACE_TENANT_HALF_PUBLIC_KEY": "pk", "AUTOTRACE_TENANT_OTHER_HALF_SECRET_KEY": "sk",
           "AUTOTRACE_TENANT_OTHER_HALF_ID": "other.half", "AUTOTRACE_TENANT_BLANK_PUBLIC_KEY": " "}
    environ = EnvCredentials(environ=env)
    assert environ.known_tenants() == ["acme"]
    assert environ.configured_tenants() == ["acme", "half", "other.half"]
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.globex]\npublic_key = "pk"\nsecret_key = "sk"\n'
                    '[tenants.unset]\npublic_key = "pk"\nsecret_key_env = "NOT_SET_ANYWHERE"\n')
    chain = ChainCredentials(FileCredentials(path, environ={}), environ, lambda tenant: None)
    assert chain.known_tenants() == ["globex", "acme"]
    assert chain.configured_tenants() == ["globex", "unset", "acme", "half", "other.half"]
