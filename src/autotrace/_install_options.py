"""What ``install()`` sets up beside the pipeline from its settings: prices, the local store, and
``stats()`` as metrics. Each failure is logged once and counted; the install goes on without it."""

from __future__ import annotations

from typing import Any

from ._internal import count, guarded_failure, log_once
from .config import Settings, read_prices
from .export.local_store import LocalStore


def report_stats_as_metrics() -> None:
    """The ``stats_as_metrics`` setting: ``stats()`` through the global meter provider (also one
    the application sets later); a failure is logged once and counted, the install goes on."""
    try:
        from .stats_metrics import stats_as_metrics  # only when asked: it imports the metrics API

        stats_as_metrics()
    except Exception as exc:
        guarded_failure("stats_as_metrics", exc)


def set_prices(setting: Any) -> None:
    """Give the ``prices`` setting to ``set_prices``: one that cannot be read or holds a bad price
    is skipped whole (none of it set), logged once and counted; the install goes on without it."""
    if setting is None:
        return
    try:
        from .integrations.openai.pricing import set_prices as set_table  # only when prices are given

        set_table(read_prices(setting))
    except Exception as exc:
        count("config_prices_invalid")
        log_once("config_prices", "autotrace: the prices setting is skipped (%s: %s)", type(exc).__name__, exc)


def open_store(settings: Settings) -> LocalStore | None:
    """The embedded store when the settings want it, None else or when it cannot be opened."""
    if not settings.local_store_enabled:
        return None
    try:
        return LocalStore(settings.local_store_path, settings.retention_days, max_mb=settings.local_store_max_mb)
    except Exception as exc:  # e.g. a read-only home directory: trace on without the store
        count("local_store_unavailable")
        log_once("local_store", "autotrace: local store %s unavailable (%s: %s); spans that would go "
                 "there are dropped (counted)", settings.local_store_path, type(exc).__name__, exc)
        return None
