"""autotrace's own counters (``stats()``) as OpenTelemetry metrics, for the application's metrics
pipeline (``stats_as_metrics``): what was exported, dropped and why, per destination, without a
loop that polls ``stats()``."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any

from ._internal import stats

#: The one instrument: each counter of ``stats()`` is a series of it, told apart by ``name``.
INSTRUMENT = "autotrace.counter"

_lock = threading.Lock()
_reporting: weakref.WeakSet[Any] = weakref.WeakSet()


def _observe(_options: Any) -> Iterable[Any]:
    from opentelemetry.metrics import Observation

    return [Observation(value, {"name": name}) for name, value in sorted(stats().items())]


def stats_as_metrics(meter_provider: Any = None) -> bool:
    """Report every counter of ``autotrace.stats()`` through ``meter_provider`` (default: the
    global one, also when the application sets it later) as the observable counter
    ``autotrace.counter``, one series per counter, its name in the ``name`` attribute (e.g.
    ``spans_dropped.queue_full``, ``spans_exported.langfuse:acme``). The values are read when the
    application's metric reader collects, never in between. Returns False when that provider
    already reports them (each is registered once)."""
    from opentelemetry import metrics

    from .recorder import __version__

    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    with _lock:
        if provider in _reporting:
            return False
        meter = provider.get_meter("autotrace", __version__)
        meter.create_observable_counter(
            INSTRUMENT, callbacks=[_observe], unit="1",
            description="autotrace's counters (autotrace.stats()): spans exported and dropped by reason, "
                        "export failures, truncations, internal errors; the counter in the name attribute")
        _reporting.add(provider)
    return True
