"""A trace environment ending in a newline is no name Langfuse takes (it answers 400 to the whole
export holding it): the rule's ``$`` matched before a trailing newline, so ``"staging\\n"`` was sent.
It is left out now (counted), its spans sent without it. Real OTLP to a loopback receiver."""

from __future__ import annotations

import autotrace
from autotrace.schema import ENVIRONMENT
from autotrace.testing.otlp_receiver import OtlpReceiver


def test_a_trace_environment_ending_in_a_newline_is_left_out() -> None:
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-1", secret_key="sk-lf-1",
                          unknown_tenant="default", integrations=(), export_interval=30.0)
        with autotrace.trace_attributes(environment="staging\n"), autotrace.start_span("turn"):
            pass
        with autotrace.trace_attributes(environment="staging"), autotrace.start_span("next"):
            pass
        assert autotrace.flush(10)
        sent = {span.name: span.attributes.get(ENVIRONMENT) for span in rx.spans}
    assert sent == {"turn": None, "next": "staging"}
    assert autotrace.stats()["trace_attributes_invalid"] == 1
