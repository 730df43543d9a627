"""``stats_as_metrics`` through a metrics SDK provider set up before a fork (a preloaded server's
workers): a forked worker's counters start at zero, while the OpenTelemetry SDK's aggregation it
inherited still holds the parent's last collected values. The reported series must stay monotonic:
with delta temporality a negative delta (``0 - parent's value``) is refused or subtracted by metrics
backends; each process's deltas must be what that process counted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider, ObservableCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader

import autotrace
from autotrace._internal import count
from tests.helpers import isolated_env

_APP = """
import json, os, sys
from opentelemetry.sdk.metrics import MeterProvider, ObservableCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
import autotrace

reader = InMemoryMetricReader(preferred_temporality={ObservableCounter: AggregationTemporality[sys.argv[2]]})
provider = MeterProvider(metric_readers=[reader])
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=())
autotrace.stats_as_metrics(provider)

def collect(label):
    points = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    points[point.attributes["name"]] = point.value
    print(json.dumps([label, {k: v for k, v in points.items() if k.startswith("spans_exported")}]), flush=True)

def spans(n, name):
    for _ in range(n):
        with autotrace.start_span(name):
            pass
    autotrace.flush()

spans(3, "before-the-fork")
collect("parent")
pid = os.fork()
if pid == 0:
    spans(1, "in-the-child")
    collect("child")
    spans(2, "in-the-child")
    collect("child-again")
    os._exit(0)
os.waitpid(pid, 0)
spans(1, "parent-after")
collect("parent-after")
"""


def _run(tmp_path: Path, temporality: str) -> list[list[object]]:
    done = subprocess.run([sys.executable, "-c", _APP, str(tmp_path / "traces.db"), temporality],
                          env=isolated_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_a_forked_worker_reports_its_own_deltas_never_negative(tmp_path: Path) -> None:
    assert _run(tmp_path, "DELTA") == [
        ["parent", {"spans_exported": 3, "spans_exported.local": 3}],
        ["child", {"spans_exported": 1, "spans_exported.local": 1}],
        ["child-again", {"spans_exported": 2, "spans_exported.local": 2}],
        ["parent-after", {"spans_exported": 1, "spans_exported.local": 1}],
    ]


def test_a_forked_worker_continues_the_cumulative_series_it_inherited(tmp_path: Path) -> None:
    assert _run(tmp_path, "CUMULATIVE") == [
        ["parent", {"spans_exported": 3, "spans_exported.local": 3}],
        ["child", {"spans_exported": 4, "spans_exported.local": 4}],
        ["child-again", {"spans_exported": 6, "spans_exported.local": 6}],
        ["parent-after", {"spans_exported": 4, "spans_exported.local": 4}],
    ]


def test_reset_stats_leaves_a_delta_reader_no_negative_delta() -> None:
    reader = InMemoryMetricReader(preferred_temporality={ObservableCounter: AggregationTemporality.DELTA})
    provider = MeterProvider(metric_readers=[reader])

    def collected() -> dict[str, int]:
        data = reader.get_metrics_data()
        return {str(point.attributes["name"]): int(point.value) for rm in data.resource_metrics
                for sm in rm.scope_metrics for metric in sm.metrics for point in metric.data.data_points}

    try:
        autotrace.stats_as_metrics(provider)
        count("spans_exported", 3)
        assert collected() == {"spans_exported": 3}
        autotrace.reset_stats()
        count("spans_exported", 1)
        assert collected() == {"spans_exported": 1}
        count("spans_exported", 2)
        assert collected() == {"spans_exported": 2}
    finally:
        provider.shutdown()
