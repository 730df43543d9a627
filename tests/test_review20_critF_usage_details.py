"""Review 20 (critique F) of ``update(usage_details=...)``: the counts given net of their details
(Langfuse's ``input``) are made gross as the wire reads them. A detail given as ``20.0`` or ``"20"``
(a count read from JSON or a data frame) was not added back, but the export reads it as a count
and took it off: Langfuse was sent 60 input tokens where the ported code said 80 (plus 20 cached).
Real OTLP to a loopback receiver."""

from __future__ import annotations

import json

import pytest

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver


@pytest.mark.parametrize("given", [
    {"input": 80, "input_cache_read": 20.0, "output": 50, "output_reasoning": "10"},
    {"input": "80", "input_cache_read": 20, "output": 50.0, "output_reasoning": 10},
    {"input": 80.0, "input_cache_read": "20", "input_audio": -3, "output": "50", "output_reasoning": 10.0},
])
def test_usage_details_counted_as_the_wire_reads_them(given: dict[str, object]) -> None:
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-1", secret_key="sk-lf-1",
                          unknown_tenant="default", integrations=(), export_interval=30.0)
        with autotrace.start_generation("ported", model="m") as gen:
            gen.update(usage_details=given)
        assert autotrace.flush(10)
        (attrs,) = [span.attributes for span in rx.spans]
    # before: {"input": 60, ...} or {"output": 40, ...} sent, gen_ai input 80 / output 50
    assert (json.loads(attrs["langfuse.observation.usage_details"]), attrs["gen_ai.usage.input_tokens"],
            attrs["gen_ai.usage.output_tokens"]) == (
        {"input": 80, "input_cache_read": 20, "output": 50, "output_reasoning": 10}, 100, 60)
