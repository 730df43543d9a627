"""``install()`` / ``uninstall()`` / ``flush()`` / ``shutdown()``: the tracer provider, the span
pipeline with its exporters, and integration discovery. All idempotent and thread-safe."""

from __future__ import annotations

import atexit
import functools
import importlib.metadata
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import wrapt
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk import trace as sdk_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from . import _langfuse_sdk, _process_exit, _providers, recorder, sigterm
from ._built import built_redactor, credentials_resolver
from ._install_options import (
    changed_settings,
    open_store,
    report_stats_as_metrics,
    same_settings,
    set_prices,
    turned_off,
    unknown_integrations,
    warn_keys_without_host,
)
from ._internal import count, guarded_failure, log_once, logger
from ._timeouts import never_raising as _never_raising
from .config import DEFAULT_SERVICE_NAME, Settings, load_settings
from .export.local_sink import LocalStoreSink
from .export.local_store import LocalStore
from .export.pipeline import SpanPipeline
from .export.router import Router
from .export.workers import WorkerPool
from .integrations.base import Integration
from .runtime import state
from .spans import ObservationTracer

ENTRY_POINT_GROUP = "autotrace.integrations"
_lock = threading.RLock()
#: Set while ``when_imported`` registers an import hook (wrapt calls it at once for a module imported).
_registering = threading.local()
#: The keys of the hooks waiting in wrapt's registry for their module's first import: one each,
#: however many installs and uninstalls come before it (wrapt keeps each until then).
_waiting: set[object] = set()
#: Seconds a patch waits for another thread's import of its library to end (``after_import``).
_IMPORT_WAIT = 300.0
_integrations: dict[str, Integration] = {}
_local_store: LocalStore | None = None
_atexit_registered = False
#: ``fork`` waits at most this long for an install or uninstall under way on another thread.
_FORK_WAIT = 15.0
_held_for_fork = False


def _before_fork() -> None:
    """No install or uninstall is half done in a forked child: ``fork`` waits for the one under way."""
    global _held_for_fork
    _process_exit.hook_forks(_at_exit)
    _held_for_fork = _lock.acquire(timeout=_FORK_WAIT)


def _after_fork_in_parent() -> None:
    global _held_for_fork
    if _held_for_fork:
        _held_for_fork = False
        _lock.release()


def _after_fork_in_child() -> None:
    """The child's copy of the lock belongs to a thread of the parent: the child starts with a free one
    (else its first install, or the uninstall at exit, would wait forever)."""
    global _lock, _held_for_fork
    _held_for_fork = False
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):  # registered after _internal's: fork takes this lock before the followers' own
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


class _Relay(SpanProcessor):
    """Added once to a provider; forwards to whichever pipeline is installed (none after uninstall)."""

    def __init__(self) -> None:
        self.installed_at = 0  # time.time_ns() when the current pipeline was installed
        #: ``(installed, uninstalled)`` in ns of the last pipeline uninstalled: a span started in that
        #: time and ending after it is never exported, counted as ``spans_dropped.shutdown``.
        self.retired = (0, 0)
        #: The processors of the provider of the last span started: a new set is looked over for a
        #: Langfuse SDK client's (``_langfuse_sdk``), also one added after ``install()``.
        self.processors: Any = None
        #: The installed provider's processors as a span last ended: a client made while a span was
        #: open is looked over before that span ends (its processor would export it, unredacted).
        self.ending_processors: Any = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pipeline = state.pipeline
        if pipeline is not None:
            processors = getattr(getattr(span, "_span_processor", None), "_span_processors", None)
            if processors is not self.processors:
                self.processors = processors
                _langfuse_sdk.take_over(processors or ())
            pipeline.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        pipeline = state.pipeline
        if pipeline is not None:
            processors = getattr(getattr(state.provider, "_active_span_processor", None), "_span_processors", None)
            if processors is not self.ending_processors:
                self.ending_processors = processors
                _langfuse_sdk.take_over(processors or ())
            pipeline.on_end(span)
        elif self.retired[0] <= (span.start_time or 0) < self.retired[1]:
            count("spans_dropped.shutdown")
            log_once("shutdown_open", "autotrace: spans still open at uninstall are not exported (counted as "
                     "spans_dropped.shutdown)")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        pipeline = state.pipeline
        return _flush(pipeline, timeout_millis / 1000) if pipeline is not None else True


_RELAY = _Relay()
_relayed_providers: list[TracerProvider] = []
#: The provider of installs that set none global (``set_global_provider=False``), made once.
_private: list[TracerProvider] = []
#: The tracer configurators of providers autotrace made, set aside while they are paused (uninstalled).
_paused: list[tuple[TracerProvider, Any]] = []


def _resource(settings: Settings) -> Resource:
    """The resource of a provider autotrace creates: the settings name the service (they fall back to
    ``OTEL_RESOURCE_ATTRIBUTES``' ``service.name`` only when no argument or variable names one)."""
    return _providers.resource(settings.service_name, named=settings.service_name != DEFAULT_SERVICE_NAME)


def _provider(settings: Settings) -> TracerProvider:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # the user's (or ours from an earlier install)
        provider = current
        if any(p is provider for p in _providers.created):
            _providers.rename(provider, _resource(settings))
            _resume(provider)
    elif (private := not settings.set_global_provider or _foreign(current)) and _private:
        provider = _private[0]  # made by an earlier install: not one per install
        _providers.rename(provider, _resource(settings))
    else:
        provider = TracerProvider(resource=_resource(settings))
        if private:
            _private.append(provider)
        else:
            trace.set_tracer_provider(provider)
            if trace.get_tracer_provider() is provider:  # else someone else won the race
                _providers.watch(provider)  # once: only the global one is found again
            else:
                other = trace.get_tracer_provider()
                provider = other if isinstance(other, TracerProvider) else provider
    if not any(p is provider for p in _relayed_providers):
        provider.add_span_processor(_RELAY)
        _relayed_providers.append(provider)
    return provider


def _foreign(current: Any) -> bool:
    """Whether the global provider, not the SDK's, is one the application set (a no-op one, another
    vendor's): OpenTelemetry refuses to replace it, so autotrace records on a provider of its own,
    one for every install (each made anew, warned of by OpenTelemetry and never released)."""
    if isinstance(current, trace.ProxyTracerProvider):  # none set yet
        return False
    log_once("provider_foreign", "autotrace: the global tracer provider (%s) is not OpenTelemetry SDK's, so "
             "autotrace records its spans on a provider of its own; spans other instrumentations start on the "
             "global one are not seen by autotrace (neither redacted nor routed)", type(current).__name__)
    return True


def _pause(provider: TracerProvider) -> None:
    """After ``uninstall()`` a provider autotrace made global starts no spans, as when there was none:
    the spans other libraries start there (the MCP SDK's own) are non-recording with the caller's
    context, so nothing is recorded or injected (they were, with flags 03). Not while the application
    has added a processor of its own to it, and no longer once it adds one (it cannot set another
    global provider); an SDK without tracer configurators keeps recording."""
    configure = getattr(provider, "_set_tracer_configurator", None)
    disabled = getattr(sdk_trace, "_disable_tracer_configurator", None)
    processors = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", None)
    if configure is None or disabled is None or processors != (_RELAY,):
        return
    try:
        _paused.append((provider, getattr(provider, "_tracer_configurator", None)))
        configure(tracer_configurator=disabled)
        provider.add_span_processor = functools.partial(_added_while_paused, provider)  # type: ignore[method-assign]
    except Exception as exc:
        guarded_failure("pause_provider", exc)


def _added_while_paused(provider: TracerProvider, span_processor: SpanProcessor) -> None:
    """A paused provider's ``add_span_processor``: the application records again, from now on."""
    with _lock:
        _resume(provider)
    type(provider).add_span_processor(provider, span_processor)


def _resume(provider: TracerProvider) -> None:
    """Give a paused provider its tracer configurator back (a re-install)."""
    for index, (paused, configurator) in enumerate(_paused):
        if paused is provider:
            del _paused[index]
            vars(provider).pop("add_span_processor", None)
            try:
                provider._set_tracer_configurator(
                    tracer_configurator=configurator or sdk_trace._default_tracer_configurator)
            except Exception as exc:
                guarded_failure("resume_provider", exc)
            return


def install(**options: Any) -> Settings:
    """Start tracing. Options override ``AUTOTRACE_*``/``LANGFUSE_*``/``OTEL_*`` variables.

    Calling it again without options, or with the settings in force, does nothing; with others it
    re-installs with them: the new pipeline takes spans at once, while the previous one sends what it
    holds (within 5 s).
    """
    global _local_store
    with _lock:
        if state.settings is not None and not options:
            return state.settings
        settings = load_settings(options)
        current = state.settings
        if current is not None and same_settings(settings, current):  # an app factory run again: no 5 s wait
            set_prices(settings.prices)  # a prices file is read again, as by a re-install
            return current
        # before anything starts or stops: a bad value leaves the current install as it is, and no threads
        redactor = built_redactor(settings.redact)
        resolver = credentials_resolver(settings)
        if current is not None:  # the settings in force are replaced whole: say which change (never a value)
            changed = ", ".join(changed_settings(current, settings))
            logger.info("autotrace: install() again, with other settings: %s", changed)
        if not settings.enabled:
            if state.settings is not None:
                uninstall()
            sigterm.unwatch()
            logger.info("autotrace: disabled by configuration")
            return settings
        previous = state.pipeline  # its open spans keep their tenants in the new one
        provider = _provider(settings)
        store = open_store(settings)
        pool = WorkerPool(settings.export_workers)
        try:
            router = Router(settings, resolver, LocalStoreSink(store) if store is not None else None, pool)
            pipeline = SpanPipeline(settings, router, redactor, previous)
        except BaseException:
            pool.stop(0.0)  # an install that fails leaves no export threads behind
            raise
        set_prices(settings.prices)  # once the install cannot fail: a failed one sets none
        warn_keys_without_host(settings, os.environ)
        _uninstrument_integrations(settings)  # the others stay patched: no call in between goes untraced
        _switch(settings, provider, pipeline)
        _local_store = store
        _instrument_integrations(settings)
        if previous is not None:  # after the switch: spans that end meanwhile go to the new pipeline, none lost
            pipeline.tenants.take_over(previous.tenants)  # spans the previous one saw start since the first copy
            _never_raising(previous.shutdown, "shutdown", 5.0)
        _register_at_exit()
        if _process_exit.started_by_multiprocessing():  # one it forks ends by os._exit: no atexit
            _process_exit.export_at_exit(_at_exit)
        _process_exit.flush_before_exec(flush)
        if settings.flush_on_sigterm:
            sigterm.watch(flush)
        else:
            sigterm.unwatch()
        if settings.stats_as_metrics:
            report_stats_as_metrics()
        return settings


def _switch(settings: Settings, provider: TracerProvider, pipeline: SpanPipeline) -> None:
    """Make ``pipeline`` the one every span goes to, with the hot path's copies of the settings."""
    state.settings = settings
    state.provider = provider
    state.capture_content = settings.capture_content
    state.stream_usage = settings.stream_usage
    state.max_value_bytes = settings.max_value_bytes
    _RELAY.installed_at = time.time_ns()
    state.pipeline = pipeline
    recorder.use_tracer(ObservationTracer(provider, _RELAY, recorder.__version__))
    _RELAY.processors = _RELAY.ending_processors = None  # each provider's looked over again, with these settings
    processors = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", None)
    _langfuse_sdk.take_over(processors or (), again=True)


def _register_at_exit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_at_exit)
        _atexit_registered = True


def _uninstrument_integrations(settings: Settings | None = None) -> None:
    """Restore every library patched by the current install (with ``settings``: those they turn off)."""
    for name, integration in list(_integrations.items()):
        if settings is not None and turned_off(name, settings) is None:
            continue
        del _integrations[name]
        try:
            integration.uninstrument()
        except Exception as exc:
            guarded_failure(f"uninstrument.{integration.name}", exc)


def uninstall(timeout: float = 5.0) -> None:
    """Stop tracing: restore every patched library, flush within ``timeout`` and stop the pipeline."""
    global _local_store
    with _lock:
        sigterm.unwatch()
        _process_exit.restore_exec()
        _uninstrument_integrations()
        pipeline, state.pipeline = state.pipeline, None
        _langfuse_sdk.release()  # its spans that end from now on, the Langfuse SDK exports again
        if pipeline is not None:
            _RELAY.retired = (_RELAY.installed_at, time.time_ns())
            if any(p is state.provider for p in _providers.created):
                _pause(state.provider)
        try:
            if pipeline is not None:
                _never_raising(pipeline.shutdown, "shutdown", timeout)
        finally:
            _langfuse_sdk.claimed.clear()  # kept while the pipeline routed what it held: none is routed now
            state.settings = None
            _local_store = None
            recorder.use_tracer(None)


def flush(timeout: float = 5.0) -> bool:
    """Export everything finished so far; True if it completed within ``timeout`` seconds."""
    pipeline = state.pipeline
    return _flush(pipeline, timeout) if pipeline is not None else True


def _flush(pipeline: SpanPipeline, timeout: float) -> bool:
    return bool(_never_raising(pipeline.flush, "flush", timeout))


def shutdown(timeout: float = 5.0) -> None:
    """Flush within ``timeout`` and stop (alias of ``uninstall`` for symmetry with OTel)."""
    uninstall(timeout)


def local_store() -> LocalStore | None:
    """The embedded store of the current install, if it is on."""
    return _local_store


def installed_integrations() -> list[str]:
    """Integrations active in this install (each patches its library once that is imported)."""
    return sorted(_integrations)


def _at_exit() -> None:
    try:
        with sigterm.exiting():  # a SIGTERM now (a pool terminating its exiting workers) waits for the export
            uninstall(timeout=2.0)
    except KeyboardInterrupt:  # Ctrl-C while the export waits (a slow endpoint): stop it, with a word
        count("exit_export_interrupted")
        log_once("exit_interrupted", "autotrace: the export at exit was interrupted; spans not sent yet are lost")
    except Exception as exc:  # never turn interpreter exit into a traceback
        guarded_failure("atexit", exc)


def _instrument_integrations(settings: Settings) -> None:
    """Register every wanted, installed integration; each patches its library when the application
    first imports it (or now, if it already has), so start-up never imports unused libraries."""
    entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    unknown = unknown_integrations(settings, {entry_point.name for entry_point in entry_points})
    if unknown:  # a typo would otherwise leave a library silently untraced (or traced)
        count("integrations_unknown", len(unknown))
        log_once(f"integrations_unknown:{','.join(unknown)}", "autotrace: no integration named %s (known: %s)",
                 ", ".join(unknown), ", ".join(sorted(entry_point.name for entry_point in entry_points)))
    for entry_point in entry_points:
        name = entry_point.name
        if turned_off(name, settings) is not None or name in _integrations:
            continue
        integration = None
        try:
            integration = entry_point.load()
            if isinstance(integration, type):
                integration = integration()
            reason = integration.check()
            if reason is not None:
                if reason != "not installed":
                    count(f"integration_skipped.{name}")
                    log_once(f"integration:{name}", "autotrace: not instrumenting %s: %s", name, reason)
                continue
            _integrations[name] = integration
            _hook(name, integration.module or name)
        except Exception as exc:  # one that cannot register its hook (no ``module``) is not kept as installed
            if _integrations.get(name) is integration:
                del _integrations[name]
            _failed(name, exc)


def _hook(name: str, module: str) -> None:
    """Have the integration ``name`` patch ``module`` when imported (at once, if it is)."""
    when_imported((name, module), module, functools.partial(_on_import, name), lambda: name in _integrations)


def when_imported(key: object, module: str, patch: Callable[[Any], None], wanted: Callable[[], bool]) -> None:
    """Have ``patch(module)`` called when ``module`` is imported (at once, if it is): one hook waits per
    ``key``. One found imported while another thread still runs its code is patched once that import
    has ended (``after_import``); if it fails, hooked again for the next import while ``wanted()``."""
    if key in _waiting and module not in sys.modules:
        return
    _waiting.add(key)

    def again() -> None:
        if wanted():
            when_imported(key, module, patch, wanted)

    def imported(loaded: Any) -> None:
        _waiting.discard(key)
        if getattr(_registering, "active", False) and _being_imported(loaded):
            # another thread is running the module's code: patching it now would import its submodules
            # in the middle of that import (the application's import then failed), or miss its classes
            _on_helper_thread(after_import, loaded, patch, again)
        else:
            patch(loaded)

    _registering.active = True
    try:
        wrapt.register_post_import_hook(imported, module)
    finally:
        _registering.active = False


def _on_import(name: str, module: Any, wait: bool = False) -> None:
    """The import hook of the integration ``name``: it patches with the one installed then, if any."""
    if not _lock.acquire(blocking=wait):
        # another thread installs or uninstalls: this hook runs inside the application's import,
        # holding the locks of the modules that import is running, which that thread may need
        # to import next (both would wait for ever); patch once it is done
        count("integration_patches_deferred")
        _on_helper_thread(_on_import, name, module, True)
        return
    try:
        integration = _integrations.get(name)
        if integration is not None and not integration.instrumented:  # else uninstalled, or done
            try:
                integration.instrument()
            except Exception as exc:
                _integrations.pop(name, None)
                _failed(name, exc)
    finally:
        _lock.release()


def _on_helper_thread(target: Callable[..., None], *args: Any) -> None:
    threading.Thread(target=target, args=args, name="autotrace-import-wait", daemon=True).start()


def _being_imported(module: Any) -> bool:
    """Whether ``module`` is in ``sys.modules`` while its code still runs (in another thread)."""
    return getattr(getattr(module, "__spec__", None), "_initializing", False) is True


def after_import(module: Any, done: Callable[[Any], None], again: Callable[[], None]) -> None:
    """On a helper thread: wait for another thread's import of ``module`` to end, then ``done(module)``
    (install's lock held). A failed import leaves ``sys.modules`` without it, and wrapt no hook (it
    called the one that deferred here at once): counted, and ``again()`` hooks anew, for the
    application's next import."""
    deadline = time.monotonic() + _IMPORT_WAIT
    while _being_imported(module) and time.monotonic() < deadline:
        time.sleep(0.01)
    with _lock:
        if not _being_imported(module) and sys.modules.get(module.__name__) is module:
            done(module)
            return
        count("integration_import_waits_abandoned")
        if not _being_imported(module):
            again()


def _failed(name: str, exc: Exception) -> None:
    count(f"integration_failed.{name}")
    log_once(f"integration_failed:{name}", "autotrace: integration %s failed to install (%s: %s); continuing "
             "without it", name, type(exc).__name__, exc)
