"""Review 20 (critique D) of ``stats_as_metrics`` across ``reset_stats()``: a counter zeroed and
counted past its last reported value before the next collection was taken as grown by the
difference only (10 reported, reset, 15 counted: reported 15, not 25), so a delta reader lost what
was counted after the reset. The metrics SDK's own reader, both temporalities."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider, ObservableCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader

import autotrace
from autotrace._internal import count


def _points(reader: InMemoryMetricReader) -> dict[str, int]:
    data = reader.get_metrics_data()
    return {str(point.attributes["name"]): int(point.value)
            for rm in (data.resource_metrics if data is not None else [])
            for sm in rm.scope_metrics for metric in sm.metrics for point in metric.data.data_points}


@pytest.mark.parametrize("temporality", ["CUMULATIVE", "DELTA"])
def test_what_is_counted_after_a_reset_is_all_reported(temporality: str) -> None:
    reader = InMemoryMetricReader(preferred_temporality={ObservableCounter: AggregationTemporality[temporality]})
    provider = MeterProvider(metric_readers=[reader])
    try:
        assert autotrace.stats_as_metrics(provider)
        count("review20.critD", 10)
        first = _points(reader)["review20.critD"]
        autotrace.reset_stats()
        count("review20.critD", 15)  # past the 10 reported before the reset
        second = _points(reader)["review20.critD"]
        autotrace.reset_stats()
        count("review20.critD", 2)  # below it
        third = _points(reader)["review20.critD"]
    finally:
        provider.shutdown()
    # before: 10, 15, 17 (cumulative) and 10, 5, 2 (delta): 10 of the 15 lost
    assert (first, second, third) == ((10, 25, 27) if temporality == "CUMULATIVE" else (10, 15, 2))
