"""``compare``'s significance tests against brute force (every split of the pooled values, every
table with the same margins), and its ``--json`` output as strict JSON."""

from __future__ import annotations

import itertools
import json
import math
import random
from fractions import Fraction
from pathlib import Path

import pytest

import autotrace
from autotrace import cli
from autotrace.compare import EXACT_MAX, mann_whitney_p, proportion_p


def _u(a: tuple[float, ...], b: tuple[float, ...]) -> Fraction:
    return sum((Fraction(1) if x > y else Fraction(1, 2) if x == y else Fraction(0)) for x in a for y in b)


def _brute_mann_whitney(a: list[float], b: list[float]) -> float:
    """The share of all splits of the pooled values whose U is as far from its mean as the observed."""
    pooled, n1 = [*a, *b], len(a)
    center = Fraction(len(a) * len(b), 2)
    observed = abs(_u(tuple(a), tuple(b)) - center)
    hits = total = 0
    for chosen in itertools.combinations(range(len(pooled)), n1):
        rest = tuple(pooled[i] for i in range(len(pooled)) if i not in chosen)
        hits += abs(_u(tuple(pooled[i] for i in chosen), rest) - center) >= observed
        total += 1
    return hits / total


def _brute_fisher(errors_a: int, n_a: int, errors_b: int, n_b: int) -> float:
    """Sum of the hypergeometric probabilities (exact fractions) no larger than the observed one."""
    n, k = n_a + n_b, errors_a + errors_b
    prob = {x: Fraction(math.comb(k, x) * math.comb(n - k, n_a - x), math.comb(n, n_a))
            for x in range(max(0, n_a - (n - k)), min(k, n_a) + 1)}
    return float(sum(p for p in prob.values() if p <= prob[errors_a]))


@pytest.mark.parametrize(("a", "b", "expected"), [
    ([1, 2, 3], [4, 5, 6], 0.1),
    ([1, 1, 1], [2, 2, 2], 0.1),
    ([1, 2], [3, 4], 1 / 3),
    ([1, 2, 3, 4], [1, 2, 3, 4], 1.0),
])
def test_small_samples_use_the_exact_mann_whitney_p(a: list[float], b: list[float], expected: float) -> None:
    assert mann_whitney_p(a, b) == pytest.approx(expected)


def test_mann_whitney_matches_brute_force_with_and_without_ties() -> None:
    rng = random.Random(7)
    for _ in range(40):
        n1, n2 = rng.randint(2, 6), rng.randint(2, 6)
        spread = rng.choice([3, 6, 1000])
        a = [float(rng.randint(0, spread)) for _ in range(n1)]
        b = [float(rng.randint(0, spread)) for _ in range(n2)]
        assert mann_whitney_p(a, b) == pytest.approx(_brute_mann_whitney(a, b), abs=1e-12), (a, b)


def test_large_samples_use_the_corrected_normal_approximation() -> None:
    a, b = list(range(EXACT_MAX)), [x + 10.5 for x in range(EXACT_MAX)]
    n = 2 * EXACT_MAX
    u = sum(1 for x in a for y in b if x > y)
    sigma = math.sqrt(EXACT_MAX * EXACT_MAX * (n + 1) / 12)
    z = (abs(u - EXACT_MAX * EXACT_MAX / 2) - 0.5) / sigma
    assert mann_whitney_p(a, b) == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert mann_whitney_p([1.0] * 30, [1.0] * 30) == 1.0


@pytest.mark.parametrize(("errors_a", "n_a", "errors_b", "n_b"), [
    (0, 2, 2, 2), (0, 3, 2, 3), (1, 10, 6, 10), (0, 30, 6, 30), (3, 7, 3, 7), (0, 5, 0, 9), (12, 40, 2, 25),
])
def test_error_rate_uses_fisher_exact_test(errors_a: int, n_a: int, errors_b: int, n_b: int) -> None:
    assert proportion_p(errors_a, n_a, errors_b, n_b) == pytest.approx(_brute_fisher(errors_a, n_a, errors_b, n_b))


def _store_with(tmp_path: Path, versions: dict[int, list[tuple[int, list[float], bool]]]) -> Path:
    """A local store with one generation per (tokens, score values, error) of each prompt version;
    the scores are written to the store directly, as an older release could have stored them."""
    path = tmp_path / "c.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=(), export_interval=0.05)
    scored: list[tuple[str, str, float]] = []
    for version, calls in versions.items():
        for tokens, values, error in calls:
            try:
                with autotrace.start_generation("answer", prompt={"name": "p", "version": version}) as gen:
                    gen.update(usage={"total": tokens})
                    scored += [(gen.trace_id, gen.id, value) for value in values]
                    if error:
                        raise RuntimeError("refused")
            except RuntimeError:
                pass
    assert autotrace.flush(5)
    store = autotrace.local_store()
    assert store is not None
    for i, (trace_id, observation_id, value) in enumerate(scored):
        store.add_score({"id": f"s{i}", "trace_id": trace_id, "observation_id": observation_id, "name": "quality",
                         "value": value, "data_type": "NUMERIC"})
    return path


def test_compare_flags_no_regression_on_three_against_three(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = _store_with(tmp_path, {1: [(100, [], False), (101, [], False), (102, [], False)],
                                  2: [(200, [], True), (201, [], True), (202, [], False)]})
    assert cli.main(["--db", str(path), "compare", "--prompt", "p", "1", "2", "--fail-on-regression"]) == 0
    assert "regressions: none" in capsys.readouterr().out


def test_compare_json_is_strict_with_infinite_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _store_with(tmp_path, {1: [(1, [math.inf], False), (1, [0.5], False), (1, [-math.inf, 0.5], False)],
                                  2: [(1, [0.5], False), (1, [0.5], False), (1, [0.5], False)]})
    assert cli.main(["--db", str(path), "compare", "--prompt", "p", "1", "2", "--json"]) == 0

    def reject(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    report = json.loads(capsys.readouterr().out, parse_constant=reject)
    quality = next(m for m in report["metrics"] if m["metric"] == "score:quality")
    assert quality["a_p50"] == quality["b_p50"] == 0.5  # the non-finite values are left out
    assert report["regressions"] == []


def test_the_comparison_table_keeps_a_space_between_columns_however_wide_the_values() -> None:
    from autotrace.compare import render_comparison

    metric = {"metric": "latency_ms", "a_p50": 1.23456789e6, "b_p50": 0.00793651234, "a_p95": -1.23456789e-7,
              "b_p95": 78.8, "p_value": 0.00793650793, "regression": True}
    text = render_comparison({"prompt": "p", "a": 6, "b": 7, "count_a": 5, "count_b": 5, "alpha": 0.05,
                              "metrics": [metric], "regressions": ["latency_ms"]})
    header, row = text.splitlines()[1:3]
    assert row.split() == ["latency_ms", "1.23457e+06", "0.00793651", "-1.23457e-07", "78.8", "0.00793651",
                           "REGRESSION"]
    assert header.split() == ["metric", "A", "p50/mean", "B", "p50/mean", "A", "p95", "B", "p95", "p", "flag"]
