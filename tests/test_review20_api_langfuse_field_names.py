"""Review 20 of the manual API: a generation's usage and cost given by the Langfuse SDK's names
(``usage_details``, ``cost_details``: code ported from it) are recorded, not left out as unknown."""

from __future__ import annotations

import autotrace
from tests.helpers import Traced

USAGE = {"input": 12, "output": 5, "total": 17}
COST = {"input": 0.0001, "output": 0.0002, "total": 0.0003}


def test_usage_details_and_cost_details_are_a_generations_usage_and_cost(traced: Traced) -> None:
    with autotrace.start_generation("ours", model="m") as gen:
        gen.update(usage=USAGE, cost=COST)
    with autotrace.start_generation("langfuse_names", model="m") as gen:
        gen.update(usage_details=USAGE, cost_details=COST)
    with autotrace.start_generation("at_start", model="m", usage_details=USAGE, cost_details=COST):
        pass

    @autotrace.observe(as_type="generation", model="m", usage_details=USAGE)
    def decorated() -> str:
        return "ok"

    assert decorated() == "ok"
    records = traced.records()
    # before: usage and cost None for all but "ours", each name counted as fields_unknown
    assert [(r["name"].rsplit(".", 1)[-1], r["usage"], r["cost"]) for r in records] == [
        ("ours", USAGE, COST), ("langfuse_names", USAGE, COST), ("at_start", USAGE, COST),
        ("decorated", USAGE, None)]
    assert autotrace.stats().get("fields_unknown", 0) == 0
