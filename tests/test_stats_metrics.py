"""``autotrace.stats_as_metrics`` (and its setting, ``AUTOTRACE_STATS_AS_METRICS``): autotrace's
counters read by the OpenTelemetry metrics SDK's own reader (``InMemoryMetricReader``), as an
application's metrics pipeline reads them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader

import autotrace
from autotrace import stats_metrics
from autotrace.config import load_settings
from tests.helpers import Traced, isolated_env


def _collected(reader: InMemoryMetricReader) -> tuple[list[tuple[str, str | None, str, Any, bool]], dict[str, int]]:
    """(scope, its version, instrument, its unit and monotonicity) of each metric, and the points
    of ``autotrace.counter`` by their ``name`` attribute."""
    metrics, points = [], {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data is not None else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                metrics.append((scope_metrics.scope.name, scope_metrics.scope.version, metric.name, metric.unit,
                                metric.data.is_monotonic))
                for point in metric.data.data_points:
                    assert set(point.attributes) == {"name"}
                    points[str(point.attributes["name"])] = point.value
    return metrics, points


def test_every_counter_is_a_series_of_one_monotonic_counter_read_at_collection(traced: Traced) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        assert autotrace.stats_as_metrics(provider) is True
        assert autotrace.stats_as_metrics(provider) is False  # registered once: no second series
        with autotrace.start_span("step"):
            pass
        assert len(traced.records()) == 1
        metrics, points = _collected(reader)
        assert metrics == [("autotrace", autotrace.__version__, "autotrace.counter", "1", True)]
        assert points == autotrace.stats() == {"spans_exported": 1, "spans_exported.local": 1}

        with autotrace.start_span("two"), autotrace.start_span("three"):
            pass
        assert len(traced.records()) == 3
        assert _collected(reader)[1] == {"spans_exported": 3, "spans_exported.local": 3}  # cumulative
        sums = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics[0].data
        assert sums.aggregation_temporality is AggregationTemporality.CUMULATIVE
    finally:
        provider.shutdown()


def test_a_dropped_span_is_reported_under_its_reason() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        autotrace.stats_as_metrics(provider)
        autotrace.install(langfuse_host="http://127.0.0.1:9", credentials={}, integrations=())  # no tenant: dropped
        with autotrace.start_span("untenanted"):
            pass
        assert autotrace.flush(10)
        assert _collected(reader)[1] == {"spans_dropped.no_tenant": 1}
    finally:
        provider.shutdown()


_LATER_PROVIDER = """
import json, sys
import autotrace
assert "autotrace.stats_metrics" not in sys.modules  # import autotrace does not load it
assert autotrace.stats_as_metrics() is True  # the global provider: not set yet
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
autotrace.install(local_store="off", integrations=())
with autotrace.start_span("step"):
    pass
assert autotrace.flush(10)
points = {str(p.attributes["name"]): p.value for rm in reader.get_metrics_data().resource_metrics
          for sm in rm.scope_metrics for m in sm.metrics if m.name == "autotrace.counter" for p in m.data.data_points}
print(json.dumps(points))
"""


def test_the_global_provider_set_later_still_reports_them() -> None:
    done = subprocess.run([sys.executable, "-c", _LATER_PROVIDER], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"spans_dropped.no_destination": 1}


_ZERO_CODE_APP = """
import json
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
import autotrace
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))  # after autotrace run's install()
with autotrace.start_span("step"):
    pass
assert autotrace.flush(10)
data = reader.get_metrics_data()  # None when no instrument reports
points = {str(p.attributes["name"]): p.value for rm in (data.resource_metrics if data else ())
          for sm in rm.scope_metrics for m in sm.metrics if m.name == "autotrace.counter" for p in m.data.data_points}
print(json.dumps(points))
"""


@pytest.mark.parametrize(("setting", "expected"), [("true", {"spans_dropped.no_destination": 1}), (None, {})],
                         ids=["on", "unset"])
def test_the_setting_turns_it_on_for_an_application_started_by_autotrace_run(
        setting: str | None, expected: dict[str, int], tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(_ZERO_CODE_APP, encoding="utf-8")
    env = isolated_env(tmp_path)
    env.update({"AUTOTRACE_LOCAL_STORE": "off", **({"AUTOTRACE_STATS_AS_METRICS": setting} if setting else {})})
    done = subprocess.run([sys.executable, "-m", "autotrace", "run", "--", sys.executable, str(app)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected


def test_a_failure_to_report_them_is_counted_and_the_install_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(meter_provider: Any = None) -> bool:
        raise RuntimeError("no metrics today")

    monkeypatch.setattr(stats_metrics, "stats_as_metrics", refuse)
    settings = autotrace.install(local_store="off", integrations=(), stats_as_metrics=True)
    assert settings.stats_as_metrics and autotrace.stats()["internal_errors.stats_as_metrics"] == 1
    with autotrace.start_span("still traced"):
        pass
    assert autotrace.flush(5)


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("0", False), (None, False)])
def test_the_setting_is_read_from_its_variable(value: str | None, expected: bool) -> None:
    assert load_settings(env={} if value is None else {"AUTOTRACE_STATS_AS_METRICS": value}).stats_as_metrics is expected
