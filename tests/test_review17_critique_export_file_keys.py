"""One tenant's malformed keys in a credentials file (a zero-width space pasted along, keys swapped)
made the whole file invalid: read at start-up like that, every other tenant's lookup failed and
their spans were dropped (``credentials_failed``); edited so later, the file's other changes (a new
tenant, a rotation) were ignored for the last good mapping. The checks of malformed keys were
made stricter this session, so more files fell into this. Now only that tenant's lookup fails
(never the default project's), as for a tenant whose secret's variable is unset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import autotrace
from autotrace.export.credentials import Credentials, LookupFailed
from autotrace.export.credentials_file import FileCredentials
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span

_GOOD = '[tenants.globex]\npublic_key = "pk-lf-globex"\nsecret_key = "sk-lf-globex"\n'
_ODD = {"zero_width": '[tenants.acme]\npublic_key = "pk-lf-acme\u200b"\nsecret_key = "sk-lf-acme"\n',
        "swapped": '[tenants.acme]\npublic_key = "sk-lf-acme"\nsecret_key = "pk-lf-acme"\n',
        "bad_host": '[tenants.acme]\npublic_key = "pk-lf-acme"\nsecret_key = "sk-lf-acme"\nhost = "ftp://x"\n'}


@pytest.mark.parametrize("odd", _ODD)
def test_one_tenants_malformed_keys_fail_only_that_tenant(rx: OtlpReceiver, tmp_path: Path, odd: str) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(_ODD[odd] + _GOOD)
    autotrace.install(langfuse_host=rx.endpoint, public_key="pk-default", secret_key="sk-default",
                      unknown_tenant="default", credentials=FileCredentials(path, reload_interval=0),
                      integrations=(), local_store="off", export_interval=0.05)
    ended_span("of globex", "globex")
    ended_span("of acme", "acme")
    ended_span("stranger", "initech")
    assert autotrace.flush(10)
    got = sorted((s.name, s.headers["x-langfuse-public-key"]) for s in rx.wait_for_spans(2))
    assert got == [("of globex", "pk-lf-globex"), ("stranger", "pk-default")]
    stats = autotrace.stats()
    assert {k: v for k, v in stats.items() if k.startswith("spans_dropped.")} == {
        "spans_dropped.credentials_failed": 1}


def test_an_edit_with_one_malformed_tenant_still_brings_the_others_changes(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text(_GOOD)
    resolver = FileCredentials(path, reload_interval=0)
    assert resolver.resolve("globex") == Credentials("pk-lf-globex", "sk-lf-globex")
    path.write_text(_ODD["zero_width"] + _GOOD.replace("sk-lf-globex", "sk-lf-globex-2"))
    os.utime(path, ns=(1, 1))  # seen as changed whatever the clock's tick
    assert resolver.resolve("globex") == Credentials("pk-lf-globex", "sk-lf-globex-2")  # rotated
    with pytest.raises(LookupFailed) as failed:
        resolver.resolve("acme")
    assert "acme" in str(failed.value) and "sk-lf" not in str(failed.value)
    assert resolver.configured_tenants() == ["acme", "globex"] and resolver.known_tenants() == ["globex"]
