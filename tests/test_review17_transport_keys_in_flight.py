"""Keys rotated while a batch is in flight: the router gave the sink new keys after the request went
out with the old (revoked) ones, which the endpoint refused. The batch was then held for the whole
10 s key wait, and every later span of the tenant with it, as if the new keys had been refused: the
refusal was blamed on the keys the sink held when the answer came, not on those the request carried."""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry.sdk.trace import TracerProvider

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.export.destination import Destination
from autotrace.export.langfuse import LangfuseSink
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import basic_auth


def _span(name: str) -> Any:
    span = TracerProvider().get_tracer("t").start_span(name)
    span.end()
    return span


def test_a_batch_refused_with_keys_rotated_while_in_flight_goes_at_once_with_the_new_ones() -> None:
    now = [100.0]
    with OtlpReceiver() as rx:
        rx.require_auth(basic_auth("pk-new", "sk-new"))  # the old keys are revoked
        arrived, rotated = threading.Event(), threading.Event()
        handle = rx._handle

        def held_until_rotated(handler: Any) -> None:  # the request is under way with the old keys
            arrived.set()
            rotated.wait(5)
            handle(handler)

        rx._handle = held_until_rotated  # type: ignore[method-assign]
        sink = LangfuseSink(rx.endpoint, Credentials("pk-old", "sk-old"))
        dest = Destination("tenant:a", sink, max_queue=10, max_batch=10, max_retries=3, clock=lambda: now[0])
        try:
            dest.add(_span("one"))
            sending = threading.Thread(target=dest.export, args=(dest.take(),))
            sending.start()
            assert arrived.wait(5)
            sink.rotate(Credentials("pk-new", "sk-new"))  # what the router does on its thread meanwhile
            rotated.set()
            sending.join(5)
            rx._handle = handle  # type: ignore[method-assign]
            assert (dest.pending, dest.due(now[0], 1.0, False)) == (1, True)  # not held for the key wait
            dest.export(dest.take())
            assert [(s.name, s.headers["authorization"]) for s in rx.spans] == [("one", basic_auth("pk-new", "sk-new"))]
            assert dest.idle()
            stats = autotrace.stats()
            assert (stats["export_failures.langfuse"], stats["spans_exported.langfuse"]) == (1, 1)
            assert "spans_dropped.export_failed" not in stats
        finally:
            dest.close()
