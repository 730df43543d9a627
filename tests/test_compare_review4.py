"""``compare`` over generations that recorded no usage or no cost: unknown, never 0."""

from __future__ import annotations

import json

import pytest

import autotrace
from autotrace import cli
from tests.helpers import Traced


def _generations(version: int, n: int, tokens: int | None, cost: float | None) -> None:
    for _ in range(n):
        with autotrace.start_generation("answer", model="m", prompt={"name": "p", "version": version}) as gen:
            if tokens is not None:
                gen.update(usage={"input": tokens - 10, "output": 10}, cost={"total": cost})


def test_compare_leaves_out_a_generation_without_usage_or_cost(traced: Traced,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Four generations of B recorded no usage and no cost (a model without a price, a call that
    failed before its usage): they were counted as 0 tokens costing 0, so B, 50% costlier per call,
    looked cheaper and shorter than A."""
    with autotrace.tenant("acme"):
        _generations(1, 4, 100, 0.02)
        _generations(2, 4, 120, 0.03)
        _generations(2, 4, None, None)
    assert [r["cost"] for r in traced.records()].count(None) == 4  # stored as no cost, not 0

    assert cli.main(["--db", str(traced.path), "compare", "--prompt", "p", "1", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["count_a"], report["count_b"]) == (4, 8)
    rows = {m["metric"]: [m.get(k) for k in ("a_p50", "b_p50", "a_p95", "b_p95", "a_n", "b_n")]
            for m in report["metrics"]}
    assert rows["tokens"] == [100.0, 120.0, 100.0, 120.0, 4, 4]  # B was 60.0: 0 for each unknown
    assert rows["cost"] == [0.02, 0.03, 0.02, 0.03, 4, 4]  # B was 0.015
    assert (rows["latency_ms"][4:], rows["error_rate"][4:]) == ([4, 8], [4, 8])
    assert report["regressions"] == ["tokens", "cost"]

    assert cli.main(["--db", str(traced.path), "compare", "--prompt", "p", "1", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines[3:5]] == [["tokens", "100", "120", "100", "120", "0.0285714", "REGRESSION"],
                                                     ["cost", "0.02", "0.03", "0.02", "0.03", "0.0285714", "REGRESSION"]]
    assert lines[-3:] == ["tokens: recorded by 4 of 4 generations of A and 4 of 8 of B (the others left out)",
                          "cost: recorded by 4 of 4 generations of A and 4 of 8 of B (the others left out)",
                          "regressions: tokens, cost"]
