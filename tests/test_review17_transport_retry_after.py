"""Throttling (429, or 503 with ``Retry-After``) when a batch has no retry left: the batch is dropped,
counted, and the next one went half a second later whatever ``Retry-After`` said, so a throttled
endpoint (with ``max_retries=0``, at every batch) was asked again long before the time it named.
Real HTTP to a loopback server answering as a throttling endpoint does."""

from __future__ import annotations

import socket

from opentelemetry.sdk.trace import TracerProvider

import autotrace
from autotrace.export.destination import Destination
from autotrace.export.otlp_http import OtlpHttpSink
from tests.test_export_edges import RawServer


def _throttled(conn: socket.socket) -> bool:
    conn.sendall(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 20\r\nContent-Length: 0\r\n\r\n")
    return True


def test_the_next_batch_after_a_throttled_one_is_dropped_waits_for_retry_after() -> None:
    server = RawServer(_throttled)
    now = [100.0]
    dest = Destination("default", OtlpHttpSink(server.url + "/v1/traces"), max_queue=10, max_batch=1,
                       max_retries=0, clock=lambda: now[0])
    tracer = TracerProvider().get_tracer("t")
    try:
        for name in ("one", "two"):
            span = tracer.start_span(name)
            span.end()
            dest.add(span)
        dest.export(dest.take())
        assert (server.requests, dest.pending) == (1, 1)  # "one" dropped, "two" waiting
        now[0] += 1.0
        assert not dest.due(now[0], 0.0, False)  # the endpoint asked for 20 s
        now[0] += 19.0
        assert dest.due(now[0], 0.0, False)
        assert autotrace.stats()["spans_dropped.export_failed"] == 1
    finally:
        dest.close()
        server.close()
