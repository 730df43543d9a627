"""What Langfuse refuses on a generation, sent over real OTLP to a loopback receiver.

Langfuse's OTel ingestion (langfuse/langfuse, ``worker/src/queues/otelIngestionQueue.ts``) parses
each observation through its ingestion schema and drops one that fails it whole (``Failed to parse
otel observation``). The generation body (``packages/shared/src/server/ingestion/types.ts``) wants
a completion start time with its offset (``z.string().datetime({offset: true})``), a prompt name
and a version together or neither (a refine; a version of 0 counts as none), token counts that are
non-negative integers and cost amounts that are non-negative numbers (or null). One odd value given
by the caller must not lose the whole generation there.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

import autotrace
from autotrace import schema
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import Traced, install_default_tenant

#: ``z.string().datetime({offset: true})``: a date and time of day with ``Z`` or an offset.
_DATETIME_WITH_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def _refusals(attributes: dict[str, Any]) -> list[str]:
    """What Langfuse's generation body refuses in these span attributes (empty: accepted)."""
    refused = []
    start = attributes.get(schema.OBS_COMPLETION_START)
    if start is not None and not _DATETIME_WITH_OFFSET.fullmatch(json.loads(start)):
        refused.append("completion_start_time")
    name, version = attributes.get(schema.OBS_PROMPT_NAME), attributes.get(schema.OBS_PROMPT_VERSION)
    if bool(name) != bool(version):
        refused.append("prompt")
    usage = json.loads(attributes.get(schema.OBS_USAGE) or "{}")
    if not all(v is None or (type(v) is int and v >= 0) for v in usage.values()):
        refused.append("usage_details")
    cost = json.loads(attributes.get(schema.OBS_COST) or "{}")
    if not all(v is None or (type(v) in (int, float) and v >= 0) for v in cost.values()):
        refused.append("cost_details")
    return refused


def _sent(rx: OtlpReceiver, n: int) -> dict[str, dict[str, Any]]:
    assert autotrace.flush(10)
    return {span.name: span.attributes for span in rx.wait_for_spans(n)}


def test_a_naive_completion_start_time_is_sent_with_its_offset(rx: OtlpReceiver) -> None:
    install_default_tenant(rx, "wire")
    naive = dt.datetime(2025, 1, 2, 3, 4, 5, 123456)  # local time, as the Langfuse SDK takes it
    with autotrace.start_generation("streamed", model="m") as gen:
        gen.update(completion_start_time=naive, output="ok")
    attributes = _sent(rx, 1)["streamed"]
    assert _refusals(attributes) == []
    sent = dt.datetime.fromisoformat(json.loads(attributes[schema.OBS_COMPLETION_START]))
    assert sent == naive.astimezone()  # the same instant


def test_a_prompt_without_a_version_langfuse_takes_leaves_the_generation_accepted(rx: OtlpReceiver) -> None:
    install_default_tenant(rx, "wire")
    for name, prompt in (("bare", "support"), ("label", {"name": "support", "version": "latest"}),
                         ("zero", {"name": "support", "version": 0}), ("kept", {"name": "support", "version": 3})):
        with autotrace.start_generation(name, model="m", prompt=prompt):
            pass
    sent = _sent(rx, 4)
    assert [name for name, attributes in sent.items() if _refusals(attributes)] == []
    assert (sent["kept"][schema.OBS_PROMPT_NAME], sent["kept"][schema.OBS_PROMPT_VERSION]) == ("support", 3)
    for name in ("bare", "label", "zero"):  # the name is not lost: metadata
        assert json.loads(sent[name][f"{schema.OBS_METADATA}.prompt_name"]) == "support", name
    assert autotrace.stats()["prompt_versions_invalid"] == 2  # "latest" and 0


def test_negative_token_counts_are_left_out_of_the_usage_sent(rx: OtlpReceiver) -> None:
    install_default_tenant(rx, "wire")
    with autotrace.start_generation("odd", model="m", usage={"input": -3, "output": 5, "total": 2}):
        pass
    with autotrace.start_generation("all-ints", model="m", usage={"input": -1, "output": 4}):
        pass
    sent = _sent(rx, 2)
    assert [_refusals(sent["odd"]), _refusals(sent["all-ints"])] == [[], []]
    assert json.loads(sent["odd"][schema.OBS_USAGE]) == {"output": 5, "total": 2}
    assert json.loads(sent["all-ints"][schema.OBS_USAGE]) == {"output": 4}
    assert schema.GEN_AI_INPUT_TOKENS not in sent["all-ints"]
    assert autotrace.stats()["usage_values_invalid"] == 2


def test_cost_amounts_langfuse_refuses_are_sent_as_no_amount(rx: OtlpReceiver) -> None:
    install_default_tenant(rx, "wire")
    with autotrace.start_generation("parts", model="m") as gen:
        gen.update(cost={"input": -0.1, "output": "0.25", "cached": True, "tiers": {"a": 1}, "total": 0.5})
    with autotrace.start_generation("refund", model="m") as gen:
        gen.update(cost=-2.0)
    with autotrace.start_generation("decimal", model="m") as gen:
        gen.update(cost=Decimal("0.0125"))
    with autotrace.start_generation("unknown", model="m") as gen:
        gen.update(cost={"total": float("inf")})  # no amount: null, which Langfuse takes
    sent = _sent(rx, 4)
    assert [name for name, attributes in sent.items() if _refusals(attributes)] == []
    assert json.loads(sent["parts"][schema.OBS_COST]) == {"input": None, "output": 0.25, "cached": None,
                                                         "tiers": None, "total": 0.5}
    assert json.loads(sent["refund"][schema.OBS_COST]) == {"total": None}
    assert json.loads(sent["decimal"][schema.OBS_COST]) == {"total": 0.0125}
    assert json.loads(sent["unknown"][schema.OBS_COST]) == {"total": None}
    assert autotrace.stats()["cost_values_invalid"] == 4


def test_the_local_store_keeps_a_prompt_named_without_a_version(traced: Traced) -> None:
    with autotrace.start_generation("bare", model="m", prompt="support"):
        pass
    (record,) = traced.records()
    assert record["prompt"] == {"name": "support", "version": None}
