"""Review 20 (critique D) of ``update(usage_details=...)``: the Langfuse SDK's ``input`` and
``output`` are net of their details (cached, reasoning tokens), as Langfuse adds every ``input*``
type up; autotrace's ``usage`` counts every token. Taken as ``usage`` as they were, the details were
taken off twice: Langfuse was sent 60 input tokens where the ported code said 80 (plus 20 cached).
Real OTLP to a loopback receiver."""

from __future__ import annotations

import json

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver

#: As the Langfuse SDK's docs and its OpenAI mapping write them: ``input`` without the cached tokens.
LANGFUSE = {"input": 80, "input_cached_tokens": 20, "output": 50, "output_reasoning_tokens": 10, "total": 160}


def test_usage_details_reach_langfuse_as_given_and_gen_ai_counts_every_token() -> None:
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-1", secret_key="sk-lf-1",
                          unknown_tenant="default", integrations=(), export_interval=30.0)
        with autotrace.start_generation("ported", model="m") as gen:
            gen.update(usage_details=LANGFUSE)
        with autotrace.start_generation("ours", model="m") as gen:  # autotrace's own name: every token
            gen.update(usage={**LANGFUSE, "input": 100, "output": 60})
        assert autotrace.flush(10)
        sent = {span.name: span.attributes for span in rx.spans}
    for name in ("ported", "ours"):
        attrs = sent[name]
        # before: ported sent {"input": 60, "output": 40, ...} and gen_ai input 80, output 50
        assert (json.loads(attrs["langfuse.observation.usage_details"]), attrs["gen_ai.usage.input_tokens"],
                attrs["gen_ai.usage.output_tokens"]) == (LANGFUSE, 100, 60), name
