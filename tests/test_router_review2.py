"""The ``unknown_tenant`` policies applied exactly, with Langfuse configured: ``local`` keeps the
spans of no or an unknown tenant in the local store (and only those, unless the store is on for
every span), while a known tenant's spans go to its own project alone."""

from __future__ import annotations

from pathlib import Path

import pytest

import autotrace
from autotrace.config import ConfigError
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import basic_auth, ended_span


def _stored_names() -> list[str]:
    store = autotrace.local_store()
    assert store is not None, "the local store is off"
    return sorted(record["name"] for record in store.observations())


def _three_spans(rx: OtlpReceiver, tmp_path: Path, **options: object) -> None:
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                      local_store_path=tmp_path / "s.db", unknown_tenant="local",
                      credentials={"t": Credentials("pk-t", "sk-t", host=rx.endpoint)}, **options)
    ended_span("no tenant")
    ended_span("stranger", "x")
    ended_span("of t", "t")
    assert autotrace.flush(10)
    assert [s.name for s in rx.wait_for_spans(1)] == ["of t"]
    assert {r.headers["authorization"] for r in rx.requests} == {basic_auth("pk-t", "sk-t")}


def test_unknown_tenant_local_keeps_only_the_unknown_spans_in_the_local_store(rx: OtlpReceiver,
                                                                              tmp_path: Path) -> None:
    _three_spans(rx, tmp_path)
    assert _stored_names() == ["no tenant", "stranger"]  # not a copy of the tenant's span
    stats = autotrace.stats()
    assert "spans_dropped.no_tenant" not in stats and "spans_dropped.unknown_tenant" not in stats


def test_unknown_tenant_local_with_the_store_on_keeps_every_span_there(rx: OtlpReceiver, tmp_path: Path) -> None:
    _three_spans(rx, tmp_path, local_store="on")
    assert _stored_names() == ["no tenant", "of t", "stranger"]


def test_unknown_tenant_local_with_the_store_off_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown_tenant.*local_store"):
        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), unknown_tenant="local",
                          local_store="off", credentials={"t": ("pk-t", "sk-t")})
