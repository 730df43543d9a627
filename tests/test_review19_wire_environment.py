"""The environment Langfuse reads from a span is its ``langfuse.environment``, else the span's or its
resource's ``deployment.environment.name`` / ``deployment.environment``; it drops the observation
and trace records whose environment breaks ``^(?!langfuse)[a-z0-9_-]+$`` (40 characters at most).

With no environment installed, ``OTEL_RESOURCE_ATTRIBUTES=deployment.environment=Production`` (a
common deployment setting) lost every span: they were sent without ``langfuse.environment``, so
Langfuse took ``Production``. Such an environment is sent lower-cased, or ``default`` when even that
is refused (counted). Real OTLP protobuf decoded by the loopback receiver."""

from __future__ import annotations

import pytest
from opentelemetry import trace

import autotrace
from autotrace.schema import ENVIRONMENT
from autotrace.testing.otlp_receiver import OtlpReceiver


def _sent(rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, resource_attributes: str,
          **settings: str) -> dict[str, object]:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", resource_attributes)
    autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-1", secret_key="sk-lf-1", unknown_tenant="default",
                      integrations=(), export_interval=30.0, **settings)
    with autotrace.start_span("ours"):
        tracer = trace.get_tracer("third.party")
        with tracer.start_as_current_span("spaced") as span:
            span.set_attribute("deployment.environment.name", "Staging EU")
        with tracer.start_as_current_span("valid") as span:
            span.set_attribute("deployment.environment.name", "qa")
        with tracer.start_as_current_span("plain"):
            pass
        with tracer.start_as_current_span("own") as span:  # its own, kept over the installed one
            span.set_attribute(ENVIRONMENT, "QA")
    assert autotrace.flush(10)
    return {span.name: span.attributes.get(ENVIRONMENT) for span in rx.wait_for_spans(5)}


def test_a_resource_environment_langfuse_refuses_is_sent_as_one_it_takes(rx: OtlpReceiver,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    sent = _sent(rx, monkeypatch, "deployment.environment=Production")
    # "qa" is taken as Langfuse reads it (nothing sent); "Staging EU" lower-cased is still refused
    assert sent == {"ours": "production", "spaced": "default", "valid": None, "plain": "production", "own": "qa"}
    assert autotrace.stats()["environments_replaced"] == 4


def test_a_resource_environment_langfuse_takes_is_left_to_it(rx: OtlpReceiver,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    sent = _sent(rx, monkeypatch, "deployment.environment.name=staging")
    assert sent == {"ours": None, "spaced": "default", "valid": None, "plain": None, "own": "qa"}
    assert autotrace.stats()["environments_replaced"] == 2


def test_the_installed_environment_wins_over_the_resource_s(rx: OtlpReceiver,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    sent = _sent(rx, monkeypatch, "deployment.environment=Production", environment="prod")
    assert sent == {"ours": "prod", "spaced": "prod", "valid": "prod", "plain": "prod", "own": "qa"}
    assert autotrace.stats()["environments_replaced"] == 1
