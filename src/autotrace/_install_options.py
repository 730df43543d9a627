"""What ``install()`` sets up beside the pipeline from its settings: prices, the local store, and
``stats()`` as metrics. Each failure is logged once and counted; the install goes on without it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
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


def warn_keys_without_host(settings: Settings, environ: Mapping[str, str]) -> None:
    """Say once that Langfuse keys are given (the default project's, ``credentials``, or
    ``AUTOTRACE_TENANT_*`` variables, even with their own ``_HOST``) while no Langfuse host is: then
    nothing is sent, Langfuse's cloud never being assumed, which otherwise looked like an export
    that silently did nothing."""
    if settings.langfuse_enabled or not (
            settings.public_key is not None or settings.credentials is not None
            or any(name.startswith("AUTOTRACE_TENANT_") and name.endswith("_PUBLIC_KEY") and value.strip()
                   for name, value in environ.items())):
        return
    log_once("config_keys_without_host", "autotrace: Langfuse keys are set but no Langfuse host (LANGFUSE_HOST, "
             "LANGFUSE_BASE_URL or AUTOTRACE_LANGFUSE_HOST): nothing is sent to Langfuse (its cloud is never "
             "assumed)")


def unknown_integrations(settings: Settings, known: set[str]) -> list[str]:
    """The names ``settings`` turn on or off that no integration has (a typo): sorted."""
    return sorted({*(settings.integrations or ()), *settings.disabled_integrations} - known)


def turned_off(name: str, settings: Settings) -> str | None:
    """Why ``settings`` leave the integration ``name`` out, or None if they want it."""
    if name in settings.disabled_integrations:
        return "turned off by disabled_integrations"
    if settings.integrations is not None and name not in settings.integrations:
        return "not among the integrations setting's"
    return None


def same_settings(settings: Settings, current: Settings) -> bool:
    """Whether ``settings`` are those in force (a value whose ``==`` raises: not the same)."""
    try:
        return bool(settings == current)
    except Exception:
        return False


def changed_settings(old: Settings, new: Settings) -> list[str]:
    """The names of the settings ``new`` gives other values than ``old``."""
    names = []
    for field in dataclasses.fields(Settings):
        try:
            if getattr(old, field.name) != getattr(new, field.name):
                names.append(field.name)
        except Exception:  # a value whose ``!=`` raises: changed
            names.append(field.name)
    return names
