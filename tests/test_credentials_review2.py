"""Credentials file reloads that a modification time and size alone miss: a rotation deployed by
a tool that keeps the file's timestamp (``rsync -t``, ``cp -p``, an archive), or written within
one tick of a coarse file-system clock, with a key of the same length. The old keys must stop
being used, and the new ones must reach the tenant's project."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

import autotrace
import autotrace.export.router as router_module
from autotrace.export.credentials import Credentials
from autotrace.export.credentials_file import FileCredentials
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _tenants(secret: str, host: str = "http://127.0.0.1:9") -> str:
    return f'[tenants.acme]\npublic_key = "pk-acme"\nsecret_key = "{secret}"\nhost = "{host}"\n'


def _replace_keeping_times(path: Path, text: str) -> None:
    """An atomic replace (write aside, rename over) whose new file keeps the old one's timestamps."""
    before = path.stat()
    aside = path.with_name(path.name + ".new")
    aside.write_text(text)
    os.utime(aside, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(aside, path)


def _rewrite_keeping_times(path: Path, text: str) -> None:
    """An in-place rewrite (same inode) that keeps the file's timestamps (``cp -p`` over it)."""
    before = path.stat()
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize("deploy", [_replace_keeping_times, _rewrite_keeping_times])
def test_a_same_size_rotation_with_the_old_timestamp_is_picked_up(tmp_path: Path, deploy) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(_tenants("sk-acme-OLD1"))
    clock = Clock()
    resolver = FileCredentials(path, reload_interval=5, clock=clock)
    assert resolver.resolve("acme").secret_key == "sk-acme-OLD1"
    deploy(path, _tenants("sk-acme-NEW2"))
    clock.now += 6
    assert resolver.resolve("acme").secret_key == "sk-acme-NEW2"


def test_rotated_file_keys_reach_the_tenants_project_and_old_keys_stop(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end: a rotation deployed with the old timestamp; spans after it carry the new keys."""
    monkeypatch.setattr(router_module, "_RECHECK_CREDENTIALS", 0.0)  # the router asks the file every span
    with OtlpReceiver() as rx:
        path = tmp_path / "tenants.toml"
        path.write_text(_tenants("sk-acme-OLD1", rx.endpoint))
        resolver = FileCredentials(path, reload_interval=0.0)
        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                          credentials=resolver)
        ended_span("before", "acme")
        assert autotrace.flush(10)
        assert [s.name for s in rx.wait_for_spans(1)] == ["before"]
        _replace_keeping_times(path, _tenants("sk-acme-NEW2", rx.endpoint))
        assert resolver.resolve("acme") == Credentials("pk-acme", "sk-acme-NEW2", rx.endpoint)
        new = "Basic " + base64.b64encode(b"pk-acme:sk-acme-NEW2").decode()
        # a known tenant's spans flow on while its keys are checked again: the first may still carry
        # the old keys; once the new ones are in use, the old ones never are again
        for i in range(50):
            ended_span(f"warm-{i}", "acme")
            assert autotrace.flush(10)
            if new in {r.headers["authorization"] for r in rx.requests}:
                break
        rx.clear()
        for i in range(3):
            ended_span(f"after-{i}", "acme")
        assert autotrace.flush(10)
        assert sorted(s.name for s in rx.wait_for_spans(3)) == ["after-0", "after-1", "after-2"]
        assert {r.headers["authorization"] for r in rx.requests} == {new}


def test_environment_values_are_read_stripped_as_settings_are(rx: OtlpReceiver,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A key from a Kubernetes secret made ``--from-file`` ends with a newline; ``LANGFUSE_*`` keys
    are read stripped, and so are a tenant's ``AUTOTRACE_TENANT_*`` variables (a key never holds a
    blank), rather than leaving the tenant with no keys and its spans dropped."""
    monkeypatch.setenv("AUTOTRACE_TENANT_ACME_CORP_ID", " acme-corp\n")
    monkeypatch.setenv("AUTOTRACE_TENANT_ACME_CORP_PUBLIC_KEY", "pk-acme\n")
    monkeypatch.setenv("AUTOTRACE_TENANT_ACME_CORP_SECRET_KEY", " sk-acme\n")
    monkeypatch.setenv("AUTOTRACE_TENANT_ACME_CORP_HOST", f"{rx.endpoint}\n")
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05)
    ended_span("of acme-corp", "acme-corp")
    assert autotrace.flush(10)
    assert [s.name for s in rx.wait_for_spans(1)] == ["of acme-corp"]
    assert {r.headers["authorization"] for r in rx.requests} == {
        "Basic " + base64.b64encode(b"pk-acme:sk-acme").decode()}


def test_one_secret_variable_with_a_newline_does_not_disable_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.acme]\npublic_key = "pk-acme"\nsecret_key_env = "ACME_SECRET"\n'
                    '[tenants.globex]\npublic_key = "pk-globex"\nsecret_key = "sk-globex"\n')
    resolver = FileCredentials(path, environ={"ACME_SECRET": "sk-acme\n"})
    assert resolver.resolve("globex") == Credentials("pk-globex", "sk-globex")
    assert resolver.resolve("acme") == Credentials("pk-acme", "sk-acme")
