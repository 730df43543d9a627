"""A score's ``tenant=`` never sends one tenant's trace id (and the score on it) to another tenant's
project: on the current observation, its tenant wins, counted as ``tenant_mismatch``; by the id of
another tenant's live trace, the score is dropped (``scores_dropped.tenant_mismatch``, session 21:
it went to the trace's tenant, one tenant writing into another's project). It sent tenant b's trace
id and score to a's project. ``tenant=`` still names the project of a trace no longer live (user
feedback by trace id). Real pipeline, loopback receivers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver


@pytest.fixture
def receivers() -> Iterator[dict[str, OtlpReceiver]]:
    started = {name: OtlpReceiver().start() for name in ("a", "b")}
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=30.0,
                      credentials={name: Credentials(f"pk-{name}", f"sk-{name}", host=rx.endpoint)
                                   for name, rx in started.items()})
    yield started
    autotrace.uninstall()
    for receiver in started.values():
        receiver.stop()


def _sent(receivers: dict[str, OtlpReceiver], n: int) -> dict[str, list[tuple[str, str, str | None]]]:
    assert autotrace.flush(10)
    deadline = time.monotonic() + 5
    while sum(len(rx.scores) for rx in receivers.values()) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return {name: sorted((body["name"], body["traceId"], body.get("observationId")) for _, body in rx.scores)
            for name, rx in receivers.items()}


def test_a_tenant_given_never_takes_another_tenants_trace(receivers: dict[str, OtlpReceiver]) -> None:
    with autotrace.tenant("b"), autotrace.start_span("b-answer") as answer:
        assert autotrace.score("current", 1.0, tenant="a") is not None  # the current observation is b's
    with autotrace.tenant("a"):
        live = autotrace.start_span("a-live")
    assert autotrace.score("by_id", 0.5, trace_id=live.trace_id, tenant="b") is None  # a's live trace: refused
    live.end()
    assert _sent(receivers, 1) == {"a": [], "b": [("current", answer.trace_id, answer.id)]}
    assert autotrace.stats()["tenant_mismatch"] == 1
    assert autotrace.stats()["scores_dropped.tenant_mismatch"] == 1


def test_a_tenant_given_still_names_the_project_of_a_trace_no_longer_live(
        receivers: dict[str, OtlpReceiver]) -> None:
    with autotrace.tenant("a"), autotrace.start_span("a-answer") as answer:
        pass
    assert autotrace.flush(10)  # the trace's spans are routed: its tenant is no longer known
    assert autotrace.score("feedback", True, trace_id=answer.trace_id, tenant="b") is not None
    assert _sent(receivers, 1) == {"a": [], "b": [("feedback", answer.trace_id, None)]}
    assert "tenant_mismatch" not in autotrace.stats()
