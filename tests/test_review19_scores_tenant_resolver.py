"""A score given with no tenant in its context, on a trace no longer live (a feedback request
scoring an answer by its trace id), takes the ``tenant_resolver``'s tenant, as a span started there
does: it went to the unknown-tenant policy's project (the default keys'), a customer's comment
with it, while the trace it scores was in the customer's. Real pipeline, loopback receivers."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator

import pytest

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver

_ORG: contextvars.ContextVar[str | None] = contextvars.ContextVar("org", default=None)


@pytest.fixture
def receivers() -> Iterator[dict[str, OtlpReceiver]]:
    started = {name: OtlpReceiver().start() for name in ("acme", "globex", "default")}
    yield started
    for receiver in started.values():
        receiver.stop()


def _install(receivers: dict[str, OtlpReceiver]) -> None:
    autotrace.install(langfuse_host=receivers["default"].endpoint, public_key="pk-d", secret_key="sk-d",
                      unknown_tenant="default", export_interval=30.0, integrations=(), tenant_resolver=_ORG.get,
                      credentials={name: Credentials(f"pk-{name}", f"sk-{name}", host=receivers[name].endpoint)
                                   for name in ("acme", "globex")})


def _scores(receivers: dict[str, OtlpReceiver], n: int) -> dict[str, list[tuple[str, str | None]]]:
    assert autotrace.flush(10)
    deadline = time.monotonic() + 5
    while sum(len(rx.scores) for rx in receivers.values()) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return {name: sorted((body["name"], body.get("comment")) for _, body in rx.scores)
            for name, rx in receivers.items()}


def test_a_score_by_trace_id_after_its_trace_ended_goes_to_the_resolvers_tenant(
        receivers: dict[str, OtlpReceiver]) -> None:
    _install(receivers)

    def request() -> str:
        _ORG.set("acme")
        with autotrace.start_span("answer") as span:
            pass
        autotrace.score("feedback", 1.0, trace_id=span.trace_id, comment="the customer's words")
        with autotrace.tenant("globex"):  # a tenant in scope still wins (its trace is no longer live)
            autotrace.score("scoped", 0.0, trace_id=span.trace_id)
        return span.trace_id

    trace_id = contextvars.copy_context().run(request)
    autotrace.score("no_tenant_anywhere", 0.5, trace_id=trace_id)  # the resolver answers None here
    assert _scores(receivers, 3) == {"acme": [("feedback", "the customer's words")], "globex": [("scoped", None)],
                                     "default": [("no_tenant_anywhere", None)]}
    assert [span.name for span in receivers["acme"].spans] == ["answer"]


def test_a_resolver_that_raises_leaves_a_score_with_no_tenant_counted(receivers: dict[str, OtlpReceiver]) -> None:
    def broken() -> str:
        raise RuntimeError("no request")

    autotrace.install(langfuse_host=receivers["default"].endpoint, public_key="pk-d", secret_key="sk-d",
                      unknown_tenant="default", export_interval=30.0, integrations=(), tenant_resolver=broken)
    assert autotrace.score("feedback", 1.0, trace_id="3f" * 16) is not None
    assert _scores(receivers, 1) == {"acme": [], "globex": [], "default": [("feedback", None)]}
    assert autotrace.stats()["tenant_resolver_errors"] == 1
