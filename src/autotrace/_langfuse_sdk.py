"""The Langfuse SDK's own span processor beside autotrace's on one tracer provider.

``Langfuse()`` (and ``get_client()``, ``@observe``) adds a ``LangfuseSpanProcessor`` to the global
tracer provider. It exports the SDK's spans and every span with a ``gen_ai.*`` attribute,
autotrace's generations among them: unredacted, to its one project, and beside autotrace's own
export of the same spans. When it exports with the public key of autotrace's default project,
autotrace takes its export over while installed: its span filter still answers at a span's start
(where the SDK marks the span Langfuse shows as the trace's root) but lets nothing go at the end,
so each span reaches Langfuse once, redacted and routed by tenant. A processor with other keys (a
project autotrace does not send to) keeps exporting the SDK's own spans (the application's choice)
and nothing else: autotrace's spans and other instrumentations' leave the process only through
autotrace, redacted (said once); while autotrace sends nothing to Langfuse (the local store only),
other instrumentations' too, as without autotrace, never autotrace's. ``release`` gives each
processor its own filter back.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from ._internal import count, follow_fork, log_once
from .runtime import state

_lock = threading.Lock()
#: The processors taken over, each with the filter it had and the one autotrace gave it.
_taken: list[tuple[Any, Callable[[Any], bool], Callable[[Any], bool]]] = []
#: The Langfuse processors judged since the last ``release`` (taken over or left alone).
_judged: weakref.WeakSet[Any] = weakref.WeakSet()


def _is_langfuse_processor(processor: Any) -> bool:
    return any(cls.__name__ == "LangfuseSpanProcessor" and cls.__module__.startswith("langfuse.")
               for cls in type(processor).__mro__)


#: The instrumentation scopes of the Langfuse SDK's own spans and of autotrace's.
_SDK_SCOPE, _OWN_SCOPE = "langfuse-sdk", "autotrace"


def _scope(span: Any) -> str | None:
    return getattr(getattr(span, "instrumentation_scope", None), "name", None)


def _running(span: Any) -> bool:
    """Taken over: the SDK answers while ``span`` runs (its app-root mark); at its end autotrace exports it."""
    return span.end_time is None


def _sdks(span: Any) -> bool:
    """Other keys: the SDK's own spans; any other span autotrace exports, redacted."""
    return _scope(span) == _SDK_SCOPE


def _not_autotraces(span: Any) -> bool:
    """Other keys while autotrace sends nothing to Langfuse: any span but autotrace's (the others
    would reach it no other way); autotrace's leave only as autotrace exports them."""
    return _scope(span) != _OWN_SCOPE


def _narrow(processor: Any, own: Callable[[Any], bool], keep: Callable[[Any], bool]) -> None:
    """Have ``processor`` export only the spans ``keep`` lets through of those its own filter does."""

    def should_export_span(span: Any) -> bool:
        return keep(span) and own(span)

    processor._should_export_span = should_export_span
    _taken.append((processor, own, should_export_span))


def take_over(processors: Iterable[Any], *, again: bool = False) -> None:
    """Judge the Langfuse SDK processors among ``processors`` (a provider's) not judged yet;
    ``again`` (a new install's settings): every one, the earlier judgements undone first."""
    with _lock:
        if again:
            _release()
        settings = state.settings
        if state.pipeline is None or settings is None:  # uninstalled meanwhile: nothing to take over
            return
        for processor in processors:
            if not _is_langfuse_processor(processor) or processor in _judged:
                continue
            _judged.add(processor)
            own = getattr(processor, "_should_export_span", None)
            if (settings.langfuse_enabled and settings.public_key is not None and callable(own)
                    and getattr(processor, "public_key", None) == settings.public_key):
                _narrow(processor, own, _running)
                count("langfuse_sdk_export_taken_over")
                continue
            if callable(own):
                _narrow(processor, own, _sdks if settings.langfuse_enabled else _not_autotraces)
            count("langfuse_sdk_exporting")
            log_once("langfuse_sdk_exporting", "autotrace: a Langfuse SDK client with other keys than autotrace's "
                     "default project (or none) exports its own spans itself, not redacted by autotrace (others' "
                     "too while autotrace sends nothing to Langfuse); autotrace's spans leave only through "
                     "autotrace. Give it autotrace's keys (LANGFUSE_PUBLIC_KEY/LANGFUSE_SECRET_KEY) to export "
                     "each span once, through autotrace")


def release() -> None:
    """Give every processor taken over its own filter back (one replaced since is left as it is)."""
    with _lock:
        _release()


def _release() -> None:
    for processor, own, ours in _taken:
        if getattr(processor, "_should_export_span", None) is ours:
            processor._should_export_span = own
    _taken.clear()
    _judged.clear()


def _after_fork_in_child() -> None:
    """A lock of its own: a thread of the parent judging processors held it, and the child's
    uninstall at its exit (``release``) waited for good."""
    global _lock
    _lock = threading.Lock()


follow_fork(sys.modules[__name__])
