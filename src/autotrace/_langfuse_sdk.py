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
other instrumentations' too, as without autotrace, never autotrace's. Such a client's own spans
that autotrace would send to the very project it sends them to (its public key, at its endpoint)
are left to it (``exports_itself``): that project gets each span once, not also a redacted copy
under the same span id. A client on an application provider joined to autotrace's (``_providers``)
is judged alike, for the spans of autotrace's provider handed to it (``joined_call``); those started
on its own provider, which autotrace never sees, it exports as without autotrace. ``release`` gives
each processor its own filter back.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from ._internal import count, follow_fork, log_once
from .runtime import state

_lock = threading.Lock()
#: The processors taken over, each with the filter it had and the one autotrace gave it.
_taken: list[tuple[Any, Callable[[Any], bool], Callable[[Any], bool]]] = []
#: The Langfuse processors judged since the last ``release`` (taken over or left alone).
_judged: weakref.WeakSet[Any] = weakref.WeakSet()
#: Raised at each ``release``: processors judged before are judged again (``_providers`` reads it).
releases = 0
#: Whether this thread hands a span of autotrace's provider to a joined provider's processors.
_joined = threading.local()
#: A span of the SDK that a client with other keys exports itself, as its filter said at the span's
#: start, by span id: that processor, its own filter, where it sends and its public key.
#: Taken when the span is routed (``exports_itself``), also after a ``release`` (the spans an
#: uninstall or re-install still routes); bounded, the oldest forgotten first (in constant time:
#: spans dropped before routing leave theirs). Empty, as it nearly always is, it costs the router nothing.
claimed: OrderedDict[int, tuple[weakref.ref[Any], Callable[[Any], bool], Any, Any]] = OrderedDict()
_MAX_CLAIMED = 16_384


def is_langfuse_processor(processor: Any) -> bool:
    """Whether ``processor`` is a Langfuse SDK client's."""
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


def joined_call(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call`` (a joined provider's processors') on a span of autotrace's provider: the Langfuse
    processors among them judge it as on autotrace's provider."""
    outer = getattr(_joined, "on", False)
    _joined.on = True
    try:
        return call(*args, **kwargs)
    finally:
        _joined.on = outer


def _narrow(processor: Any, own: Callable[[Any], bool], keep: Callable[[Any], bool],
            joined: bool = False, claims: bool = False) -> None:
    """Have ``processor`` export only the spans ``keep`` lets through of those its own filter does;
    on a ``joined`` provider, of autotrace's provider's spans only (its own it exports as it would).
    ``claims``: the spans it lets through at their start are noted as its own export (``claimed``)."""

    def should_export_span(span: Any) -> bool:
        if joined and not getattr(_joined, "on", False):
            return own(span)
        verdict = keep(span) and own(span)
        if verdict and claims and span.end_time is None:
            if len(claimed) >= _MAX_CLAIMED:
                try:
                    claimed.popitem(last=False)
                except KeyError:  # another thread took it meanwhile
                    pass
            claimed[span.context.span_id] = exporter
        return verdict

    exporter = (weakref.ref(processor), own, _endpoint(processor) if claims else None,
                getattr(processor, "public_key", None))
    if claims:
        should_export_span.claims_for = own  # type: ignore[attr-defined]
    processor._should_export_span = should_export_span
    _taken.append((processor, own, should_export_span))


@functools.lru_cache(maxsize=256)
def endpoint_key(url: str) -> tuple[Any, ...] | None:
    """``url`` as compared with another OTLP endpoint: scheme and host in lower case, the port
    said or not, slashes collapsed; None if it is no http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port, re.sub("/+", "/", parts.path).rstrip("/"), parts.query


def _endpoint(processor: Any) -> tuple[Any, ...] | None:
    """Where ``processor`` sends (its OTLP exporter's URL, under the SDK's wrapping exporter); None
    when that cannot be told (an exporter the application gave it)."""
    try:
        exporter = getattr(processor, "span_exporter", None)
        for _ in range(4):
            url = getattr(exporter, "_endpoint", None)
            if isinstance(url, str):
                return endpoint_key(url)
            exporter = getattr(exporter, "_exporter", None)
    except Exception:  # an exporter of the application's, read in a way it does not expect
        pass
    return None


def _exports(processor: Any) -> bool:
    """Whether ``processor`` still exports: not shut down (OpenTelemetry 1.28 and later, and before)."""
    batch = getattr(processor, "_batch_processor", None)
    if batch is not None:
        return getattr(batch, "_shutdown", True) is False
    return getattr(processor, "done", True) is False


def exports_itself(span: Any, public_key: str | None, url: str) -> bool:
    """Whether a Langfuse SDK client exporting on its own (other keys than autotrace's default
    project) sends ``span`` itself to the project of ``public_key`` at ``url``: the span is its own
    (claimed at its start), the client has that key and sends to that endpoint, still exports, with
    a filter that claims as that one did or its own (``_claiming``), and its own filter lets the span
    through. Pipeline thread, once per span; anything unsure says False (autotrace then sends its
    redacted copy)."""
    exporter = claimed.pop(getattr(getattr(span, "context", None), "span_id", None), None)
    if exporter is None or public_key is None:
        return False
    ref, own, endpoint, key = exporter
    processor = ref()
    if (processor is None or key != public_key or endpoint is None or endpoint != endpoint_key(url)
            or not _claiming(getattr(processor, "_should_export_span", None), own) or not _exports(processor)):
        return False
    try:
        return bool(own(span))
    except Exception:  # the SDK drops a span its filter fails on: autotrace's copy is then the only one
        return False


def _claiming(current: Any, own: Callable[[Any], bool]) -> bool:
    """Whether a processor whose filter is ``current`` exports the spans it claimed with its own
    filter ``own``: still the filter that claimed them, or another one as it (a re-install's), or
    its own given back (``release``: the spans an uninstall still routes)."""
    return current is own or getattr(current, "claims_for", None) is own


def forget(span: Any) -> None:
    """``span`` goes to no Langfuse destination: its claim, if any, is not needed."""
    claimed.pop(getattr(getattr(span, "context", None), "span_id", None), None)


def take_over(processors: Iterable[Any], *, again: bool = False, joined: bool = False) -> None:
    """Judge the Langfuse SDK processors among ``processors`` (a provider's, ``joined`` to autotrace's
    or autotrace's) not judged yet; ``again`` (a new install's settings): every one, the earlier
    judgements undone first."""
    with _lock:
        if again:
            _release()
        settings = state.settings
        if state.pipeline is None or settings is None:  # uninstalled meanwhile: nothing to take over
            return
        for processor in processors:
            if not is_langfuse_processor(processor) or processor in _judged:
                continue
            _judged.add(processor)
            own = getattr(processor, "_should_export_span", None)
            if (settings.langfuse_enabled and settings.public_key is not None and callable(own)
                    and getattr(processor, "public_key", None) == settings.public_key):
                _narrow(processor, own, _running, joined)
                count("langfuse_sdk_export_taken_over")
                continue
            if callable(own) and settings.langfuse_enabled:
                _narrow(processor, own, _sdks, joined, claims=True)
            elif callable(own):
                _narrow(processor, own, _not_autotraces, joined)
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
    global releases
    releases += 1
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
