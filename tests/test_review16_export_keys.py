"""Key rotation that revokes the old keys: the batch Langfuse refused (401) with them was dropped,
and so was every batch until the router's next credentials check brought the new keys (some 3 s of
a tenant's spans at each routine rotation). Now a batch refused with keys not refused before waits
(bounded) for new ones; keys refused already (wrong ones) still drop batches at once."""

from __future__ import annotations

import time

import pytest
from opentelemetry.sdk.trace import TracerProvider

import autotrace
import autotrace.export.destination as destination_module
import autotrace.export.router as router_module
from autotrace.export.credentials import Credentials
from autotrace.export.destination import Destination
from autotrace.export.langfuse import LangfuseSink
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import basic_auth, ended_span, wait_for_stat


def test_a_batch_refused_with_revoked_keys_goes_with_the_rotated_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(router_module, "_RECHECK_CREDENTIALS", 0.2)  # the 5 s re-check, shortened
    with OtlpReceiver() as rx:
        keys = {"current": ("pk-old", "sk-old")}
        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                          credentials=lambda tenant: Credentials(*keys["current"], host=rx.endpoint))
        ended_span("before", "acme")
        assert [s.name for s in rx.wait_for_spans(1)] == ["before"]
        keys["current"] = ("pk-new", "sk-new")  # rotated in the secret store, the old key revoked
        rx.require_auth(basic_auth("pk-new", "sk-new"))
        ended_span("during", "acme")  # sent with the cached old keys: refused
        assert wait_for_stat("export_failures.langfuse:acme") == 1
        time.sleep(0.3)  # past the re-check interval: the next span makes the router look again
        ended_span("after", "acme")
        assert sorted(s.name for s in rx.wait_for_spans(3)) == ["after", "before", "during"]
        assert autotrace.flush(5)
        during = next(s for s in rx.spans if s.name == "during")
        assert during.headers["authorization"] == basic_auth("pk-new", "sk-new")
    stats = autotrace.stats()
    assert "spans_dropped.export_failed" not in stats
    assert stats["spans_exported.langfuse:acme"] == 3


def _span(name: str) -> object:
    span = TracerProvider().get_tracer("t").start_span(name)
    span.end()
    return span


def test_a_refused_batch_waits_for_new_keys_and_wrong_keys_drop_at_once() -> None:
    now = [100.0]
    with OtlpReceiver() as rx:
        rx.require_auth(basic_auth("pk-new", "sk-new"))
        sink = LangfuseSink(rx.endpoint, Credentials("pk-old", "sk-old"))
        dest = Destination("tenant:a", sink, max_queue=10, max_batch=10, max_retries=3, clock=lambda: now[0])
        try:
            dest.add(_span("one"))
            dest.export(dest.take())  # refused: kept, waiting for other keys
            assert (dest.pending, dest.due(now[0], 1.0, False)) == (1, False)
            sink.rotate(Credentials("pk-new", "sk-new"))
            assert dest.due(now[0], 1.0, False)  # at once, with the new keys
            dest.export(dest.take())
            assert [s.name for s in rx.spans] == ["one"]
            assert rx.spans[0].headers["authorization"] == basic_auth("pk-new", "sk-new")

            rx.require_auth(basic_auth("pk-other", "sk-other"))  # the new keys are refused too: held once
            dest.add(_span("two"))
            dest.export(dest.take())
            assert (dest.pending, dest.due(now[0], 1.0, False)) == (1, False)
            now[0] += destination_module._KEYS_WAIT
            assert dest.due(now[0], 1.0, False)  # waited long enough: tried again with the same keys
            dest.export(dest.take())
            assert dest.pending == 0  # refused again: dropped
            dest.add(_span("three"))  # keys known to be refused: no wait
            dest.export(dest.take())
            assert dest.pending == 0
            stats = autotrace.stats()
            assert (stats["spans_dropped.export_failed"], stats["export_failures.langfuse"]) == (2, 4)
            assert stats["spans_exported.langfuse"] == 1
        finally:
            dest.close()


def test_a_flush_sends_a_batch_waiting_for_keys_at_once() -> None:
    """A flush (or the export at exit) does not wait for new keys: refused again, dropped, counted."""
    with OtlpReceiver() as rx:
        rx.require_auth("Basic wrong")
        sink = LangfuseSink(rx.endpoint, Credentials("pk", "sk"))
        dest = Destination("tenant:a", sink, max_queue=10, max_batch=10, max_retries=3)
        try:
            dest.add(_span("one"))
            dest.export(dest.take())
            assert not dest.due(time.monotonic(), 1.0, False)
            assert dest.due(time.monotonic(), 1.0, True)
            dest.export(dest.take())
            assert dest.idle()
            assert autotrace.stats()["spans_dropped.export_failed"] == 1
        finally:
            dest.close()
