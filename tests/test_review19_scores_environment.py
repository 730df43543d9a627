"""A score lands in the environment Langfuse files the trace it scores under. With no environment
installed, that is the one Langfuse reads from the spans' resource (``deployment.environment`` /
``deployment.environment.name`` in ``OTEL_RESOURCE_ATTRIBUTES``), as sent (lower-cased, else
``default``, when Langfuse would refuse it): a score sent without one was filed under ``default``,
apart from its trace. Real OTLP and scores requests, decoded by the loopback receiver."""

from __future__ import annotations

import time

import pytest

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_default_tenant


def _sent(rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, resource_attributes: str,
          **settings: str) -> tuple[dict[str, object], dict[str, object]]:
    """The environment of each score and span sent, by name (None: none sent)."""
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", resource_attributes)
    install_default_tenant(rx, "env", **settings)
    with autotrace.start_generation("answer", model="m") as gen:
        gen.score("by_handle", 1.0)
        autotrace.score("current", 0.5)
    with autotrace.trace_attributes(environment="qa"), autotrace.start_span("tagged") as tagged:
        tagged.score("tagged_trace", True)
    autotrace.score("by_id_later", 0.2, trace_id=gen.trace_id, observation_id=gen.id)
    assert autotrace.flush(10)
    deadline = time.monotonic() + 5
    while len(rx.scores) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    spans = {span.name: span.attributes.get("langfuse.environment") for span in rx.wait_for_spans(2)}
    return {body["name"]: body.get("environment") for _, body in rx.scores}, spans


def test_a_score_goes_to_the_resource_environment_its_trace_is_sent_to(rx: OtlpReceiver,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    scores, spans = _sent(rx, monkeypatch, "deployment.environment=Production")
    assert spans == {"answer": "production", "tagged": "qa"}
    assert scores == {"by_handle": "production", "current": "production", "tagged_trace": "qa",
                      "by_id_later": "production"}


def test_a_score_goes_to_the_resource_environment_langfuse_reads_itself(rx: OtlpReceiver,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    scores, spans = _sent(rx, monkeypatch, "deployment.environment.name=staging,deployment.environment=x")
    assert spans == {"answer": None, "tagged": "qa"}  # Langfuse reads "staging" from the resource
    assert scores == {"by_handle": "staging", "current": "staging", "tagged_trace": "qa", "by_id_later": "staging"}


def test_a_resource_environment_langfuse_refuses_even_lower_cased_sends_scores_to_default(
        rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    scores, spans = _sent(rx, monkeypatch, "deployment.environment=Staging EU")
    assert spans == {"answer": "default", "tagged": "qa"}
    assert scores == {"by_handle": "default", "current": "default", "tagged_trace": "qa", "by_id_later": "default"}


def test_the_installed_environment_still_wins_over_the_resource_s(rx: OtlpReceiver,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    scores, spans = _sent(rx, monkeypatch, "deployment.environment=Production", environment="prod")
    assert spans == {"answer": "prod", "tagged": "qa"}
    assert scores == {"by_handle": "prod", "current": "prod", "tagged_trace": "qa", "by_id_later": "prod"}
