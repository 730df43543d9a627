"""A paused host's probe that is refused at once (the host restarting: nothing listens on its
port yet) is no sign of a hang: the pause ends there. Old code kept every tenant's exports to the
host waiting for the probe's whole ``export_timeout`` plus the cool-down, though the probe was over
in a millisecond and the host back right after (and a shutdown within that window dropped them all
without a try). Real loopback OTLP receiver, stopped and started again on its port; real spans."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider

import autotrace
from autotrace.export import _host_health
from autotrace.export.connections import ConnectionPool
from autotrace.export.destination import Destination
from autotrace.export.otlp_http import OtlpHttpSink
from autotrace.testing.otlp_receiver import OtlpReceiver


def _span(name: str) -> object:
    span = TracerProvider().get_tracer("review19").start_span(name)
    span.end()
    return span


def test_a_probe_refused_at_once_ends_the_pause_and_the_host_back_gets_the_next_batch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_host_health, "COOL_DOWN", 0.0)  # the cool-down is over at once: the next batch probes
    rx = OtlpReceiver().start()
    port, url = rx.port, f"{rx.endpoint}/v1/traces"
    rx.stop()  # restarting: its port refuses connections
    sink = OtlpHttpSink(url, timeout=600.0, pool=ConnectionPool())
    destination = Destination("d", sink, max_queue=10, max_batch=10, max_retries=5)
    health = sink.health
    for _ in range(_host_health.TRIP):  # it had stopped answering: paused
        health.timed_out()
    assert health.unresponsive
    destination.add(_span("first"))
    destination.export(destination.take())  # the probe: refused at once
    assert autotrace.stats()["export_failures"] == 1
    assert (health.paused(), health.unresponsive) == (False, False)
    rx.start(port)  # back
    try:
        destination.add(_span("second"))
        destination.export(destination.take())  # the retry batch ("first") goes at once
        destination.export(destination.take())
        assert sorted(span.name for span in rx.wait_for_spans(2)) == ["first", "second"]
        assert autotrace.stats()["spans_exported"] == 2
    finally:
        rx.stop()
