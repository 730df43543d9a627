"""autotrace's own counters (``stats()``) as OpenTelemetry metrics, for the application's metrics
pipeline (``stats_as_metrics``): what was exported, dropped and why, per destination, without a
loop that polls ``stats()``.

The series reported only grow, as a monotonic counter's must: a forked worker's counters start at
zero (its own), and ``reset_stats()`` zeroes them, but a meter provider set up before the fork (or
the reset) still holds the values last reported; with delta temporality it would report the drop
as a negative delta. Each series goes on from the value it last reported to that provider (the
parent's, in a forked child) by what was counted since."""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from ._internal import count, follow_fork, stats_and_resets

#: The one instrument: each counter of ``stats()`` is a series of it, told apart by ``name``.
INSTRUMENT = "autotrace.counter"
#: Series reported at most: the counters' names are bounded (``_internal``), but each
#: ``reset_stats()`` lets as many new keyed ones come; past this, new names are not reported
#: (counted as ``stats_metrics_series_capped``).
MAX_SERIES = 16_384

_lock = threading.Lock()
_reporting: weakref.WeakSet[Any] = weakref.WeakSet()


class _Series:
    """The callback of one provider's instrument: each series' value last reported to it, and the
    counter's value it was reported at (forgotten in a forked child, whose counters start at zero
    while the series go on)."""

    def __init__(self) -> None:
        self.reported: dict[str, int] = {}
        self.seen: dict[str, int] = {}
        self.resets = 0  # ``reset_stats()`` calls when ``seen`` was read: past them, ``seen`` is void
        self.lock = threading.Lock()
        _all.add(self)

    def __call__(self, _options: Any) -> Iterable[Any]:
        from opentelemetry.metrics import Observation

        reported, seen = self.reported, self.seen
        with self.lock:  # read in it: an older read applied after a newer one would seem a reset
            counters, resets = stats_and_resets()
            if resets != self.resets:  # zeroed since: all counted after it is new, even past ``seen``
                seen.clear()
                self.resets = resets
            for name in sorted(counters.keys() | reported.keys()):
                if name not in reported and len(reported) >= MAX_SERIES:
                    count("stats_metrics_series_capped")
                    continue
                value, before = counters.get(name, 0), seen.get(name, 0)
                # below what it was reported at (zeroed by a fork since): all of it is new
                reported[name] = reported.get(name, 0) + (value - before if value >= before else value)
                seen[name] = value
            return [Observation(value, {"name": name}) for name, value in sorted(reported.items())]


_all: weakref.WeakSet[_Series] = weakref.WeakSet()


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
            INSTRUMENT, callbacks=[_Series()], unit="1",
            description="autotrace's counters (autotrace.stats()): spans exported and dropped by reason, "
                        "export failures, truncations, internal errors; the counter in the name attribute")
        _reporting.add(provider)
    return True


def _after_fork_in_child() -> None:
    """The child's counters start at zero: its series go on from the parent's last reported values."""
    global _lock
    _lock = threading.Lock()
    for series in list(_all):
        series.lock = threading.Lock()
        series.seen.clear()


follow_fork(sys.modules[__name__])
