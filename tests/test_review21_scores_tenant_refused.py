"""A score given by ids alone (``trace_id=``, ``observation_id=``) on another tenant's live work is
dropped, counted as ``scores_dropped.tenant_mismatch``, whether the other tenant is given as
``tenant=``, in scope, or the ``tenant_resolver``'s: it went to the live trace's tenant, so one
tenant's code wrote into another tenant's Langfuse project by knowing a trace id. A score of the
work's own (its handle, or ``score()`` in its current observation) still goes to the work's tenant
(``tenant_mismatch``), and a score with no tenant claimed still goes to the live trace's. Real
pipeline, loopback receivers."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator

import pytest
from opentelemetry import trace

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver

_ORG: contextvars.ContextVar[str | None] = contextvars.ContextVar("org", default=None)
Sent = dict[str, list[tuple[str, str, str | None]]]


@pytest.fixture
def receivers() -> Iterator[dict[str, OtlpReceiver]]:
    started = {name: OtlpReceiver().start() for name in ("a", "b")}
    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=30.0,
                      tenant_resolver=_ORG.get,
                      credentials={name: Credentials(f"pk-{name}", f"sk-{name}", host=rx.endpoint)
                                   for name, rx in started.items()})
    yield started
    autotrace.uninstall()
    for receiver in started.values():
        receiver.stop()


def _sent(receivers: dict[str, OtlpReceiver], n: int) -> Sent:
    assert autotrace.flush(10)
    deadline = time.monotonic() + 5
    while sum(len(rx.scores) for rx in receivers.values()) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return {name: sorted((body["name"], body["traceId"], body.get("observationId")) for _, body in rx.scores)
            for name, rx in receivers.items()}


def _in_org(org: str, fn: object) -> object:
    def run() -> object:
        _ORG.set(org)
        return fn()  # type: ignore[operator]

    return contextvars.copy_context().run(run)


def _b_trace() -> tuple[autotrace.Observation, autotrace.Observation]:
    """Tenant b's live trace: a root and a step under it, neither current."""
    with autotrace.tenant("b"):
        root = autotrace.start_span("b-answer")
        with trace.use_span(root.span):
            return root, autotrace.start_span("b-step")


def test_a_score_by_id_on_another_tenants_live_trace_is_dropped(receivers: dict[str, OtlpReceiver]) -> None:
    root, child = _b_trace()
    trace_id = root.trace_id
    with autotrace.tenant("a"):  # a's request, knowing (or guessing) b's trace id
        assert autotrace.score("scoped", 0.0, trace_id=trace_id) is None
        assert autotrace.score("on_step", 0.0, trace_id=trace_id, observation_id=child.id) is None
    assert autotrace.score("given", 0.0, trace_id=trace_id, tenant="a") is None
    assert _in_org("a", lambda: autotrace.score("resolved", 0.0, trace_id=trace_id)) is None
    with autotrace.tenant("a"), autotrace.start_span("a-answer") as own:  # a's trace, b's observation
        assert autotrace.score("mixed", 0.0, trace_id=own.trace_id, observation_id=child.id) is None
    # no tenant claimed, or b's own: the trace's tenant, as before
    assert autotrace.score("unclaimed", 1.0, trace_id=trace_id) is not None
    assert _in_org("b", lambda: autotrace.score("b_resolved", 1.0, trace_id=trace_id)) is not None
    child.end()
    root.end()
    assert _sent(receivers, 2) == {"a": [], "b": [("b_resolved", trace_id, None), ("unclaimed", trace_id, None)]}
    stats = autotrace.stats()
    assert stats["scores_dropped.tenant_mismatch"] == 5
    assert "tenant_mismatch" not in stats


def test_a_score_of_the_works_own_still_goes_to_its_tenant(receivers: dict[str, OtlpReceiver]) -> None:
    root, child = _b_trace()
    with autotrace.tenant("a"), trace.use_span(child.span):  # b's step current under a's scope
        root.score("by_handle", 1.0)  # the root's handle, another observation current
        assert autotrace.score("current", 1.0) is not None
        assert autotrace.score("current_trace", 1.0, trace_id=root.trace_id) is not None
        assert autotrace.score("current_by_id", 1.0, trace_id=root.trace_id, observation_id=child.id,
                               tenant="a") is not None
    child.end()
    root.end()
    assert _sent(receivers, 4) == {"a": [], "b": [("by_handle", root.trace_id, root.id),
                                                  ("current", root.trace_id, child.id),
                                                  ("current_by_id", root.trace_id, child.id),
                                                  ("current_trace", root.trace_id, None)]}
    stats = autotrace.stats()
    assert stats["tenant_mismatch"] == 4
    assert "scores_dropped.tenant_mismatch" not in stats


def test_a_late_score_by_id_goes_to_the_tenant_claimed(receivers: dict[str, OtlpReceiver]) -> None:
    with autotrace.tenant("b"), autotrace.start_span("b-answer") as answer:
        pass
    assert autotrace.flush(10)  # routed: no longer live, its tenant no longer known
    with autotrace.tenant("a"):  # a's own project gets it; nothing of b's is touched
        assert autotrace.score("late", 0.5, trace_id=answer.trace_id) is not None
    assert _sent(receivers, 1) == {"a": [("late", answer.trace_id, None)], "b": []}
    assert "scores_dropped.tenant_mismatch" not in autotrace.stats()
