"""Token usage as Langfuse counts it. autotrace's ``input`` and ``output`` count every token, as
OpenAI's usage does (``prompt_tokens`` includes ``cached_tokens``); Langfuse adds every usage type
whose name holds ``input`` up for a generation's input and prices each type, so the details sent
beside ``input``/``output`` must not be in them too (Langfuse's own OpenAI mapping subtracts them).
Old code sent the full counts: Langfuse showed 180 input tokens for a 100-token prompt with 80
cached, and a cost it computed charged the cached tokens twice. The local store keeps the full counts."""

from __future__ import annotations

import json
from pathlib import Path

import autotrace
from autotrace import schema
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_default_tenant

USAGE = {"input": 100, "input_cached_tokens": 80, "output": 30, "output_reasoning_tokens": 10, "total": 130}


def test_langfuse_gets_input_and_output_without_their_details_and_the_store_every_token(
        rx: OtlpReceiver, tmp_path: Path) -> None:
    install_default_tenant(rx, "usage", local_store="on", local_store_path=tmp_path / "t.db")
    with autotrace.start_generation("cached", model="gpt-4o") as gen:
        gen.update(usage=dict(USAGE))
    with autotrace.start_generation("plain", model="gpt-4o") as gen:
        gen.update(usage={"input": 7, "output": 3})
    with autotrace.start_generation("odd", model="gpt-4o") as gen:  # details over the count: never below 0
        gen.update(usage={"input": 5, "input_cached_tokens": 9, "output": 2})
    assert autotrace.flush(10)
    sent = {span.name: span.attributes for span in rx.wait_for_spans(3)}
    assert json.loads(sent["cached"][schema.OBS_USAGE]) == {
        "input": 20, "input_cached_tokens": 80, "output": 20, "output_reasoning_tokens": 10, "total": 130}
    assert (sent["cached"]["gen_ai.usage.input_tokens"], sent["cached"]["gen_ai.usage.output_tokens"]) == (100, 30)
    assert json.loads(sent["plain"][schema.OBS_USAGE]) == {"input": 7, "output": 3}
    assert json.loads(sent["odd"][schema.OBS_USAGE]) == {"input": 0, "input_cached_tokens": 9, "output": 2}
    store = autotrace.local_store()
    assert store is not None
    stored = {r["name"]: r["usage"] for r in store.observations()}
    assert stored["cached"] == USAGE and stored["plain"] == {"input": 7, "output": 3, "total": 10}
    assert stored["odd"] == {"input": 5, "input_cached_tokens": 9, "output": 2, "total": 7}
