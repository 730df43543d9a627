"""The tracer provider autotrace makes global: its resource, and the application's own provider set
up after it.

OpenTelemetry allows one global provider per process and refuses a second one ("Overriding of
current TracerProvider is not allowed"). An application that sets up its provider after
``install()`` (always, under ``autotrace run``) would see its exporters go silent: global tracers
keep starting spans on autotrace's provider. While autotrace's provider is the global one, such a
provider is joined to it instead: its span processors (also ones added to it later) get every span
the global provider starts, as they would have as the global one, and its resource attributes
describe the spans started from then on. Sampling stays the global provider's (both read
``OTEL_TRACES_SAMPLER``); tracers taken from the application's provider object itself, not through
the global one, stay its own and are not seen by autotrace.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from opentelemetry import trace as otel_trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from . import _langfuse_sdk
from ._internal import count, guarded_failure, log_once, logger
from .export.workers import on_own_thread

#: Application providers joined at most (each is a processor on every span); more are refused as
#: OpenTelemetry refuses them, counted as ``provider_join_refused``.
MAX_JOINED = 8
#: The service name OpenTelemetry gives a provider whose application named none: not a name.
_PLACEHOLDER_SERVICE = "unknown_service"
#: The instrumentation scope of autotrace's own spans (``spans.ObservationTracer``).
_OWN_SCOPE = "autotrace"

#: Providers autotrace made global (the resource of each follows the settings of the latest install).
created: list[TracerProvider] = []
_joined: list[TracerProvider] = []
#: The joined providers' resource attributes: a re-install's resource keeps them, but its service name.
_joined_attributes: dict[str, Any] = {}
_lock = threading.Lock()


def resource(service_name: str, named: bool) -> Resource:
    """The resource of a provider autotrace creates or renames: ``OTEL_RESOURCE_ATTRIBUTES`` as
    OpenTelemetry reads it, those of an application provider joined, and ``service_name`` unless it
    is a default (not ``named``) and a joined provider names the service."""
    attributes = dict(_joined_attributes)
    if named or "service.name" not in attributes:
        attributes["service.name"] = service_name
    return Resource.create().merge(Resource(attributes))


def rename(provider: TracerProvider, new: Resource) -> None:
    """Give ``provider`` the resource ``new`` for the spans started from now on, also by the tracers it
    handed out before (the SDK keeps one per scope and hands it out again). The SDK has no setter: its
    private attributes are set, only where they exist."""
    old = provider.resource
    if old.attributes == new.attributes or not hasattr(provider, "_resource"):
        return
    provider._resource = new
    tracers = getattr(provider, "_tracers", None)
    for tracer in list(tracers.values()) if isinstance(tracers, dict) else ():
        if getattr(tracer, "resource", None) is old:
            tracer.resource = new


def watch(provider: TracerProvider) -> None:
    """Note ``provider`` as made global by autotrace, and join the providers the application sets
    up after it. OpenTelemetry's setter is wrapped once per process."""
    if not any(p is provider for p in created):
        created.append(provider)
    original = getattr(otel_trace, "_set_tracer_provider", None)
    if original is None or getattr(original, "_autotrace_joins", False):
        return

    def set_tracer_provider(tracer_provider: Any, *args: Any, **kwargs: Any) -> None:
        if not _joined_to_global(tracer_provider):
            original(tracer_provider, *args, **kwargs)

    set_tracer_provider._autotrace_joins = True  # type: ignore[attr-defined]
    otel_trace._set_tracer_provider = set_tracer_provider  # type: ignore[attr-defined]


def _joined_to_global(provider: Any) -> bool:
    """Join ``provider`` to the global one if that is autotrace's; False leaves it to OpenTelemetry
    (which sets it if there is no global provider yet, and refuses it else). Never raises. A provider
    is noted as joined only once its processors are added (then a failing rename is only counted);
    providers set from several threads at once are each joined once, their attributes all kept."""
    try:
        current = otel_trace.get_tracer_provider()
        if provider is current or not any(p is current for p in created):
            return False
        processors = getattr(provider, "_active_span_processor", None)
        if not isinstance(provider, TracerProvider) or processors is None:
            return False
        attributes = _named(provider.resource.attributes)
        with _lock:
            if any(p is provider for p in _joined):
                return True
            if len(_joined) >= MAX_JOINED:
                count("provider_join_refused")
                return False
            current.add_span_processor(_ToApplication(processors))
            _joined.append(provider)
            _joined_attributes.update(attributes)
            try:
                rename(current, current.resource.merge(Resource(attributes)))
            except Exception as exc:
                guarded_failure("provider_rename", exc)
        count("provider_joined")
        logger.info("autotrace: the application's tracer provider, set up after install(), is joined to "
                    "autotrace's global one: its processors get every span")
        return True
    except Exception as exc:
        guarded_failure("provider_join", exc)
        log_once("provider_join", "autotrace: the application's tracer provider could not be joined (%s)", exc)
        return False


def _named(attributes: Any) -> dict[str, Any]:
    """``attributes`` without OpenTelemetry's placeholder service name."""
    named = dict(attributes)
    if str(named.get("service.name", "")).startswith(_PLACEHOLDER_SERVICE):
        del named["service.name"]
    return named


class _ToApplication(SpanProcessor):
    """Hands the spans of autotrace's global provider to a joined provider's processors, which the
    application keeps adding to and shuts down itself. Not the spans started on autotrace's export
    threads (a redaction hook's): without autotrace they would not exist. A processor that raises
    on one of autotrace's spans leaves that span and the call it traces as they are (counted as
    ``provider_app_errors``); on any other span it raises as it would on a global provider. A
    Langfuse SDK client's processor among them, also one added later, is judged as on autotrace's
    provider (``_langfuse_sdk``): it would export autotrace's spans, unredacted."""

    def __init__(self, processors: Any) -> None:
        self._processors = processors
        #: The processors last looked over, the judgements then, and whether a Langfuse SDK client's
        #: is among them (the others' calls are made as they are: no cost per span beyond this check).
        self._judged: tuple[Any, int, bool] = (None, -1, False)

    def _judge(self) -> bool:
        """Whether a Langfuse SDK client's processor is among the joined provider's (judged then)."""
        processors = getattr(self._processors, "_span_processors", None)
        judged = self._judged
        if processors is judged[0] and _langfuse_sdk.releases == judged[1]:
            return judged[2]
        langfuse = any(_langfuse_sdk.is_langfuse_processor(processor) for processor in processors or ())
        self._judged = (processors, _langfuse_sdk.releases, langfuse)
        if langfuse:
            try:
                _langfuse_sdk.take_over(processors, joined=True)
            except Exception as exc:
                guarded_failure("provider_langfuse_sdk", exc)
        return langfuse

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if not on_own_thread():
            self._forward(span, self._processors.on_start, self._judge(), span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        ending = getattr(self._processors, "_on_ending", None)  # OpenTelemetry 1.39 and later
        if ending is not None and not on_own_thread():
            self._forward(span, ending, False, span)  # no span filter is asked here

    def on_end(self, span: ReadableSpan) -> None:
        if not on_own_thread():
            self._forward(span, self._processors.on_end, self._judge(), span)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self._processors.force_flush(timeout_millis))

    def shutdown(self) -> None:
        """Nothing: the application's provider shuts its processors down (at its exit, or when told)."""

    @staticmethod
    def _forward(span: ReadableSpan, call: Any, langfuse: bool, *args: Any, **kwargs: Any) -> None:
        try:
            if langfuse:
                _langfuse_sdk.joined_call(call, *args, **kwargs)
            else:
                call(*args, **kwargs)
        except Exception as exc:
            if getattr(span.instrumentation_scope, "name", None) != _OWN_SCOPE:
                raise
            count("provider_app_errors")
            log_once(f"provider_app:{type(exc).__name__}", "autotrace: a span processor of the application's "
                     "tracer provider failed on autotrace's span (%s: %s); the call traced goes on",
                     type(exc).__name__, exc)


def _after_fork_in_child() -> None:
    """A fork while another thread joins a provider: the child starts with a free lock."""
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
