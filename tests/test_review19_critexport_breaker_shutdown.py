"""The shutdown while the shared Langfuse is paused after a blip probes it at once rather than
waiting out the cool-down: old code sent nothing for the whole cool-down, so a process ending
within it (the host back up) dropped every tenant's spans without a try. Bounded by the shutdown's
timeout, and what it could not send is counted once. Real loopback OTLP receiver answering slower
than ``export_timeout``, then in time again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import autotrace
from autotrace.export import _host_health, workers
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span, wait_for_stat

TENANTS = [f"t{i}" for i in range(6)]


@pytest.fixture
def rx(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """A receiver every tenant shares, answering 1 s late (after ``export_timeout``); a cool-down
    far longer than the test. Exports run on one thread, one after another, so no request is under
    way once the host is paused (its tenants' spans held)."""
    monkeypatch.setattr(_host_health, "COOL_DOWN", 600.0)
    monkeypatch.setattr(workers, "_STUCK_AFTER", 1e9)
    with OtlpReceiver() as receiver:
        receiver.delay(1.0)
        credentials = {name: Credentials(f"pk-{name}", f"sk-{name}", host=receiver.endpoint) for name in TENANTS}
        autotrace.install(langfuse_host=receiver.endpoint, integrations=(), credentials=credentials,
                          export_interval=0.05, export_timeout=0.3, export_workers=1, max_retries=20)
        for name in TENANTS:
            ended_span("blip", name)
        assert wait_for_stat("export_host_paused", 1) == 1
        try:
            yield receiver
        finally:
            autotrace.uninstall(timeout=0.5)


def _outcome() -> dict[str, int]:
    return {k: v for k, v in autotrace.stats().items()
            if k in ("export_host_paused", "spans_exported") or k.startswith("spans_dropped")}


def test_the_shutdown_of_a_paused_host_that_is_back_sends_every_tenants_spans(rx: OtlpReceiver) -> None:
    rx.delay(0.0)  # back up, within the cool-down
    autotrace.uninstall(timeout=5)
    assert _outcome() == {"export_host_paused": 1, "spans_exported": 6}
    sent = {request.headers["authorization"] for request in rx.requests if request.span_count}
    assert len(sent) == len(TENANTS)  # every tenant's batch, with its own keys


def test_the_shutdown_of_a_host_still_hung_is_bounded_and_counts_every_span_once(rx: OtlpReceiver) -> None:
    autotrace.uninstall(timeout=0.5)
    assert _outcome() == {"export_host_paused": 1, "spans_dropped.shutdown": 6}
