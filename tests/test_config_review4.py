"""Credentials files with odd content, and ``autotrace check`` on hosts written differently.

- A JSON file giving a tenant (or a field) twice silently took the last one, where TOML refuses
  the file; now JSON refuses it too, naming the key (the last good file stays in use).
- A tenant's table with a misspelt field (``hots``) was read without it: the tenant's keys went to
  the default Langfuse instead of its own host. A field no reader knows, or the secret given two
  ways, now makes the file invalid, named, as any other invalid entry does.
- ``sharing_a_project`` told hosts apart by their text: two tenants sending the same keys to
  ``https://LF.example.com:443/`` and ``https://lf.example.com`` were not reported as sharing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import autotrace
from autotrace.export.connections import ConnectionPool
from autotrace.export.credentials import Credentials, LookupFailed
from autotrace.export.credentials_file import FileCredentials
from autotrace.export.key_check import KeyCheck, check_all, sharing_a_project
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span


def test_a_json_file_giving_a_tenant_twice_is_refused_naming_it(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tenants.json"
    path.write_text('{"tenants": {"acme": {"public_key": "pk-1", "secret_key": "sk-1"},'
                    ' "acme": {"public_key": "pk-2", "secret_key": "sk-2"}}}')
    with caplog.at_level(logging.WARNING, logger="autotrace"), pytest.raises(LookupFailed):
        FileCredentials(path).resolve("acme")
    assert "key 'acme' is given twice" in caplog.text and "sk-" not in caplog.text


def test_a_json_tenant_giving_a_field_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_text('{"tenants": {"acme": {"public_key": "pk-1", "secret_key": "sk-1", "public_key": "pk-2"}}}')
    with pytest.raises(LookupFailed):
        FileCredentials(path).resolve("acme")


@pytest.mark.parametrize(("entry", "named"), [
    ({"public_key": "pk-acme", "secret_key": "sk-acme", "hots": "http://127.0.0.1:9"}, "unknown field(s) 'hots'"),
    ({"public_key": "pk-acme", "secret_key": "sk-acme", "secret_key_env": "ACME_SECRET"}, "both secret_key"),
    ({"public_key": "pk-acme", "secret_key_env": 7}, "secret_key_env must name"),
], ids=["misspelt-host", "two-secrets", "env-not-a-name"])
def test_a_tenant_entry_no_reader_understands_never_sends_its_keys_to_the_default_host(
        rx: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        entry: dict[str, object], named: str) -> None:
    monkeypatch.setenv("ACME_SECRET", "sk-acme-env")
    monkeypatch.setenv("7", "sk-acme-seven")
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps({"tenants": {"acme": entry}}))
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-default", secret_key="sk-default",
                          unknown_tenant="default", credentials=path, integrations=(), local_store="off",
                          export_interval=0.05)
        ended_span("of acme", "acme")
        assert autotrace.flush(10)
    assert rx.spans == []  # the file is invalid: no tenant's spans go anywhere, least of all the default host
    assert autotrace.stats().get("spans_dropped.credentials_failed") == 1
    assert named in caplog.text


def test_a_toml_entry_with_the_known_fields_is_still_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_SECRET", "sk-acme")
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.acme]\npublic_key = "pk-acme"\nsecret_key_env = "ACME_SECRET"\n'
                    'host = "http://lf.acme:3000"\n[tenants.Acme]\npublic_key = "pk-Acme"\nsecret_key = "sk-Acme"\n')
    resolver = FileCredentials(path)
    assert resolver.resolve("acme") == Credentials("pk-acme", "sk-acme", "http://lf.acme:3000")
    assert resolver.resolve("Acme") == Credentials("pk-Acme", "sk-Acme")  # ids differing in case: two tenants
    assert resolver.resolve("ACME") is None


def _ok(name: str, host: str, public_key: str = "pk-shared", project_id: str | None = None) -> KeyCheck:
    return KeyCheck(name, "ok", "spans accepted", host, public_key, project_id=project_id)


def test_hosts_written_differently_but_reaching_one_server_share_a_project() -> None:
    checks = [_ok("a", "https://lf.example.com"), _ok("b", "https://LF.Example.com:443"),
              _ok("c", "HTTPS://lf.example.com/"), _ok("d", "http://lf.example.com"),
              _ok("e", "https://lf.example.com:8443"), _ok("f", "https://lf.example.com/eu"),
              _ok("g", "http://lf.example.com:80", project_id="p-1"), _ok("h", "http://lf.example.com", "pk-h", "p-1"),
              _ok("i", "https://[::1]:443"), _ok("j", "https://[::1]")]
    assert sharing_a_project(checks) == [["a", "b", "c"], ["g", "h"], ["i", "j"]]


def test_check_reports_two_tenants_reaching_one_receiver_under_another_spelling(rx: OtlpReceiver) -> None:
    same = Credentials("pk-shared", "sk-shared", rx.endpoint)
    other = Credentials("pk-shared", "sk-shared", rx.endpoint.replace("http://", "HTTP://") + "/")
    pool = ConnectionPool()
    try:
        checks = check_all([("acme", same), ("globex", other)], None, 5.0, pool)
    finally:
        pool.close()
    assert [c.outcome for c in checks] == ["ok", "ok"]
    assert sharing_a_project(checks) == [["acme", "globex"]]


def test_check_takes_a_resolver_answer_as_the_router_does(rx: OtlpReceiver) -> None:
    """``autotrace check`` asks the user's resolver as exports do: a mapping is a key pair; junk is
    a failed check, not a crash of the whole command (it raised AttributeError)."""
    pool = ConnectionPool()
    try:
        checks = check_all([("acme", {"public_key": "pk-acme", "secret_key": "sk-acme"}),  # type: ignore[list-item]
                            ("globex", "pk-globex:sk-globex")], rx.endpoint, 5.0, pool)  # type: ignore[list-item]
    finally:
        pool.close()
    assert [(c.name, c.outcome, c.public_key) for c in checks] == [("acme", "ok", "pk-acme"),
                                                                   ("globex", "failed", None)]
    assert checks[1].detail == "the credentials lookup answered no key pair (cannot build credentials from a str)"
