"""Compare two versions of a prompt over the local store: count, latency p50/p95, tokens, cost,
error rate and scores, with significance tests, flagging regressions of version B against A.

Latency, tokens, cost and numeric scores use the two-sided Mann-Whitney U test: exact (every split
of the pooled values, ties kept as midranks) up to ``EXACT_MAX`` values in all, else the normal
approximation with tie and continuity corrections. The error rate uses Fisher's exact test. A
change is flagged as a regression when it is worse (slower, more tokens, costlier, more errors,
lower scores) at p < ``alpha``. A value a generation did not record (no usage, no cost) is unknown,
never 0: it is left out of that metric's sample, as a non-finite value (a score of infinity or NaN)
is, and each metric gives the size of its samples (``a_n``, ``b_n``; the text output says which
metric is short of its version's generations). The report holds only finite numbers or None
(``null`` in ``--json``, strict JSON).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import groupby
from typing import Any

from .render import clean, pad

#: metric -> True when higher is worse
_DIRECTION = {"latency_ms": True, "tokens": True, "cost": True}
#: The fields of a generation that the comparison reads.
_COMPARED = ("id", "trace_id", "duration_ms", "usage", "cost", "error", "level")
#: The Mann-Whitney p-value is exact up to this many values in both samples together (~30 ms at most).
EXACT_MAX = 50


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _normal_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic."""
    return math.erfc(abs(z) / math.sqrt(2))


def _doubled_ranks(values: Sequence[float]) -> list[tuple[int, int]]:
    """The tie groups of sorted ``values``: (twice their midrank, size), in order."""
    groups: list[tuple[int, int]] = []
    first = 0  # the 0-based position of the group's first value
    for _, run in groupby(values):  # each value compared with its group's first, in C
        size = sum(1 for _ in run)
        groups.append((2 * first + size + 1, size))  # ranks first + 1 .. first + size, doubled midrank
        first += size
    return groups


def _exact_p(groups: list[tuple[int, int]], n1: int, observed: int) -> float:
    """P(|W - E W| >= |w - E W|) over every choice of ``n1`` of the pooled values, where W is twice
    their rank sum and ``observed`` is twice the first sample's."""
    n = sum(size for _, size in groups)
    center = n1 * (n + 1)
    counts: list[dict[int, int]] = [{0: 1}] + [{} for _ in range(n1)]  # k chosen -> {sum: ways}
    seen = 0
    for rank, size in groups:
        seen += size
        for k in range(min(n1, seen), 0, -1):  # downwards: counts[k - j] is still without this group
            target = counts[k]
            for j in range(1, min(size, k) + 1):
                ways, add = math.comb(size, j), j * rank
                for total, c in counts[k - j].items():
                    target[total + add] = target.get(total + add, 0) + c * ways
    distance = abs(observed - center)
    extreme = sum(c for total, c in counts[n1].items() if abs(total - center) >= distance)
    return min(1.0, extreme / math.comb(n, n1))


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value that ``a`` and ``b`` come from the same distribution (None if too small)."""
    n1, n2 = len(a), len(b)
    if n1 < 2 or n2 < 2:
        return None
    if n1 > n2:  # the same p-value, counted over the smaller sample
        a, b, n1, n2 = b, a, n2, n1
    groups = _doubled_ranks(sorted([*a, *b]))
    rank_of = dict(zip(sorted(set(a) | set(b)), (rank for rank, _ in groups), strict=True))
    doubled_sum = sum(rank_of[v] for v in a)
    n = n1 + n2
    if n <= EXACT_MAX:
        return _exact_p(groups, n1, doubled_sum)
    ties = sum(size**3 - size for _, size in groups)
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 1.0
    u = doubled_sum / 2 - n1 * (n1 + 1) / 2
    return _normal_p(max(0.0, abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(variance))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def proportion_p(errors_a: int, n_a: int, errors_b: int, n_b: int) -> float | None:
    """Two-sided Fisher exact p-value that two error rates are equal (None if a sample is empty):
    the probability of every table with these margins no likelier than the observed one."""
    if n_a == 0 or n_b == 0:
        return None
    n, errors = n_a + n_b, errors_a + errors_b

    def log_p(x: int) -> float:  # x errors in A, hypergeometric
        return _log_comb(errors, x) + _log_comb(n - errors, n_a - x) - _log_comb(n, n_a)

    observed = log_p(errors_a) + 1e-7  # relative tolerance for equally likely tables, as R's fisher.test
    tables = range(max(0, n_a - (n - errors)), min(errors, n_a) + 1)
    return min(1.0, sum(math.exp(p) for p in map(log_p, tables) if p <= observed))


def _finite(values: Iterable[Any]) -> list[float]:
    """The finite numbers among ``values`` as floats: a recorded value that is no number (text, an
    object, a bool, None) is left out, as a non-finite one is."""
    return [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]


def _total(value: Any) -> Any:
    """A usage's or cost's ``total`` as recorded; None (unknown, left out) when there is none: a
    generation without a recorded cost was not free."""
    return value.get("total") if isinstance(value, dict) else None


def _finite_or_none(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _version_data(records: list[dict[str, Any]], scores: list[dict[str, Any]]) -> dict[str, Any]:
    ids = {r["id"] for r in records}
    traces = {r["trace_id"] for r in records}
    by_name: dict[str, list[float]] = defaultdict(list)
    for score in scores:
        if not isinstance(score.get("value"), int | float) or not math.isfinite(score["value"]):
            continue
        if score.get("observation_id") in ids or (score.get("observation_id") is None and score["trace_id"] in traces):
            by_name[score["name"]].append(float(score["value"]))
    return {
        "latency_ms": _finite(r.get("duration_ms") for r in records),
        "tokens": _finite(_total(r.get("usage")) for r in records),
        "cost": _finite(_total(r.get("cost")) for r in records),
        "errors": sum(1 for r in records if r.get("error") or r.get("level") == "ERROR"),
        "scores": dict(by_name),
    }


def _select(observations: Iterable[dict[str, Any]], prompt: str, versions: tuple[str, str],
            found: dict[str, set[str]]) -> dict[str, list[dict[str, Any]]]:
    """The generations of ``prompt`` per version, read in one pass and kept with only the fields
    compared (memory bounded by those generations, not by the store and its inputs and outputs).
    Replays are left out: their model and parameters were overridden, and their frozen calls did not
    run, so they are no samples of a version. ``found`` gets every prompt name read, with its versions."""
    selected: dict[str, list[dict[str, Any]]] = {version: [] for version in versions}
    for record in observations:
        recorded = record.get("prompt")
        if record.get("type") != "generation" or not isinstance(recorded, dict) or record.get("replay_of"):
            continue
        name, number = recorded.get("name"), recorded.get("version")
        version = str(number)
        if isinstance(name, str):
            versions = found.setdefault(name, set())
            if number is not None:
                versions.add(version)
        if name != prompt or number is None:  # a prompt named without a version is no sample of one ("None")
            continue
        bucket = selected.get(version)
        if bucket is not None:
            bucket.append({key: record.get(key) for key in _COMPARED})
    return selected


def compare_versions(observations: Iterable[dict[str, Any]], scores: list[dict[str, Any]], prompt: str,
                     version_a: str | int, version_b: str | int, alpha: float = 0.05,
                     found: dict[str, set[str]] | None = None) -> dict[str, Any]:
    """The comparison report of two versions of ``prompt`` (``observations`` is read once); ``found``,
    when given, gets the prompt names of the generations read, each with its versions (``stored``)."""
    selected = _select(observations, prompt, (str(version_a), str(version_b)), {} if found is None else found)
    a_records, b_records = selected[str(version_a)], selected[str(version_b)]
    a, b = _version_data(a_records, scores), _version_data(b_records, scores)
    metrics: list[dict[str, Any]] = []
    for name, higher_is_worse in _DIRECTION.items():
        values_a, values_b = a[name], b[name]
        p = mann_whitney_p(values_a, values_b)
        median_a, median_b = percentile(values_a, 0.5), percentile(values_b, 0.5)
        worse = (median_a is not None and median_b is not None
                 and (median_b > median_a if higher_is_worse else median_b < median_a))
        metrics.append({"metric": name, "a_p50": median_a, "b_p50": median_b, "a_p95": percentile(values_a, 0.95),
                        "b_p95": percentile(values_b, 0.95), "p_value": p, "a_n": len(values_a),
                        "b_n": len(values_b), "regression": bool(worse and p is not None and p < alpha)})
    n_a, n_b = len(a_records), len(b_records)
    p = proportion_p(a["errors"], n_a, b["errors"], n_b)
    rate_a = a["errors"] / n_a if n_a else None
    rate_b = b["errors"] / n_b if n_b else None
    metrics.append({"metric": "error_rate", "a_p50": rate_a, "b_p50": rate_b, "a_p95": None, "b_p95": None,
                    "p_value": p, "a_n": n_a, "b_n": n_b,
                    "regression": bool(rate_a is not None and rate_b is not None and rate_b > rate_a
                                       and p is not None and p < alpha)})
    for score_name in sorted(set(a["scores"]) | set(b["scores"])):
        values_a, values_b = a["scores"].get(score_name, []), b["scores"].get(score_name, [])
        p = mann_whitney_p(values_a, values_b)
        mean_a = sum(values_a) / len(values_a) if values_a else None
        mean_b = sum(values_b) / len(values_b) if values_b else None
        metrics.append({"metric": f"score:{score_name}", "a_p50": mean_a, "b_p50": mean_b, "a_p95": None,
                        "b_p95": None, "p_value": p, "a_n": len(values_a), "b_n": len(values_b),
                        "regression": bool(mean_a is not None and mean_b is not None and mean_b < mean_a
                                           and p is not None and p < alpha)})
    for metric in metrics:  # an overflowing mean or percentile: no number, so the JSON stays strict
        for key in ("a_p50", "b_p50", "a_p95", "b_p95"):
            metric[key] = _finite_or_none(metric[key])
    return {"prompt": prompt, "a": str(version_a), "b": str(version_b), "count_a": n_a, "count_b": n_b,
            "alpha": _finite_or_none(alpha), "metrics": metrics, "regressions": [m["metric"] for m in metrics if m["regression"]]}


def stored(found: dict[str, set[str]], prompt: str) -> str:
    """What a comparison that found no generations of a version could have compared: the versions of
    ``prompt`` in ``found`` (``compare_versions``), else the prompt names there are."""
    def listed(texts: Iterable[str], most: int = 20) -> str:  # integers in order (Langfuse's versions), then text
        ordered = sorted(texts, key=lambda t: (not t.isdecimal(), len(t), t))
        more = f" and {len(ordered) - most} more" if len(ordered) > most else ""
        return ", ".join(ordered[:most]) + more

    if found.get(prompt):
        return f"stored versions of prompt {prompt!r}: {listed(found[prompt])}"
    if prompt in found:
        return f"the stored generations of prompt {prompt!r} record no version"
    return f"stored prompts: {listed(found)}" if found else "no stored generation records a prompt"


_WIDTHS = (13, 13, 11, 11, 10)


def render_comparison(report: dict[str, Any]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        return f"{value:.6g}" if isinstance(value, float) else str(value)

    def row(metric: str, cells: list[str], flag: str) -> str:
        # a space before every column, however wide its value (``.6g`` can take 12 characters)
        return pad(clean(metric), 22) + "".join(f" {text:>{width}}" for text, width in zip(cells, _WIDTHS, strict=True)) \
            + f"  {flag}"

    lines = [f"prompt {report['prompt']!r}: version {report['a']} (n={report['count_a']}) vs "
             f"{report['b']} (n={report['count_b']}), alpha={report['alpha']}",
             row("metric", ["A p50/mean", "B p50/mean", "A p95", "B p95", "p"], "flag")]
    for m in report["metrics"]:
        lines.append(row(m["metric"], [cell(m[key]) for key in ("a_p50", "b_p50", "a_p95", "b_p95", "p_value")],
                         "REGRESSION" if m["regression"] else ""))
    for m in report["metrics"]:  # a generation's value it did not record is unknown: say how many were known
        known = (m.get("a_n", report["count_a"]), m.get("b_n", report["count_b"]))
        if m["metric"] in _DIRECTION and known != (report["count_a"], report["count_b"]):
            lines.append(f"{m['metric']}: recorded by {known[0]} of {report['count_a']} generations of A and "
                         f"{known[1]} of {report['count_b']} of B (the others left out)")
    lines.append("regressions: " + (", ".join(report["regressions"]) or "none"))
    return "\n".join(map(clean, lines))  # score names and versions are recorded text: no terminal escapes
