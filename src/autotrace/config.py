"""Settings: keyword arguments > ``AUTOTRACE_*`` / ``LANGFUSE_*`` / ``OTEL_*`` environment > defaults.

Every value is validated; a bad one raises :class:`ConfigError` naming the setting and the source.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from . import _config_parse as p
from ._internal import count, log_once
from .export.credentials import Credentials, CredentialsError


class ConfigError(ValueError):
    """An invalid autotrace setting (the message names the setting and where it came from)."""


#: The environment names Langfuse accepts (``install(environment=...)``, ``trace_attributes``).
ENVIRONMENT_NAME = re.compile(r"(?!langfuse)[a-z0-9_-]{1,40}\Z")
DEFAULT_SERVICE_NAME = "autotrace-app"
_POLICIES = ("drop", "default", "local")
_LOCAL_MODES = ("auto", "on", "off")


def default_store_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the embedded store lives unless ``AUTOTRACE_LOCAL_STORE_PATH`` says otherwise (``env``:
    ``os.environ`` by default; a blank ``AUTOTRACE_HOME`` is unset, as every blank variable is)."""
    home = ((os.environ if env is None else env).get("AUTOTRACE_HOME") or "").strip()
    if home:
        return p.as_path(home) / "traces.db"
    try:
        return Path.home() / ".autotrace" / "traces.db"
    except (RuntimeError, KeyError):  # no HOME and a user id without a passwd entry (a container's --user)
        user = os.getuid() if hasattr(os, "getuid") else "user"
        return Path(tempfile.gettempdir()) / f"autotrace-{user}" / "traces.db"



@dataclasses.dataclass(frozen=True)
class Settings:
    """Validated configuration for one ``install()``."""

    enabled: bool = True
    service_name: str = DEFAULT_SERVICE_NAME
    langfuse_host: str | None = None
    public_key: str | None = None
    secret_key: str | None = None
    credentials: Any = None
    tenant_resolver: Callable[[], str | None] | None = None
    unknown_tenant: str = "drop"
    trust_incoming_tenant: bool = False
    #: A gRPC server's tenant per call: ``fn(handler_call_details, servicer_context)`` (``async`` too
    #: for grpc.aio handlers) returning a tenant id or None; for servers made after ``install()``.
    grpc_tenant_from_call: Callable[[Any, Any], Any] | None = None
    #: The gRPC targets an outgoing call sends the tenant to (as baggage): patterns of the channel's
    #: target, ``("*",)`` for every one (``all``), ``()`` for none (``none``).
    tenant_baggage: tuple[str, ...] = ("*",)
    #: gRPC calls that get no span, server or client: patterns of the full method name
    #: (``/package.Service/Method``); by default health checks and reflection, which probes and
    #: tools call every few seconds (each would be a trace of its own, with no tenant).
    grpc_untraced_methods: tuple[str, ...] = ("/grpc.health.v1.Health/*", "/grpc.reflection.*")
    local_store: str = "auto"
    local_store_path: Path = dataclasses.field(default_factory=default_store_path)
    retention_days: float = 28.0
    #: The local store's size cap in MiB (used pages; the oldest whole traces go past it, counted).
    local_store_max_mb: float = 1024.0
    capture_content: bool = True
    stream_usage: bool = True
    max_value_bytes: int = 64 * 1024
    queue_size: int = 20_000
    max_export_batch: int = 512
    #: Most bytes of one export request before compression; a larger batch goes in several.
    max_export_bytes: int = 4 << 20
    export_interval: float = 1.0
    export_timeout: float = 10.0
    #: Export TLS (``export/tls.py``): a PEM bundle trusted in addition to the system CAs, and a
    #: client certificate for mutual TLS (its key in the same file, or in ``export_client_key``).
    export_ca_file: Path | None = None
    export_client_cert: Path | None = None
    export_client_key: Path | None = None
    max_retries: int = 5
    max_destination_queue: int = 10_000
    max_buffered_spans: int = 100_000
    max_tenants: int = 1_000
    tenant_idle_seconds: float = 300.0
    export_workers: int = 4
    redact: Any = True
    environment: str | None = None
    release: str | None = None
    integrations: tuple[str, ...] | None = None
    disabled_integrations: tuple[str, ...] = ()
    full_trace_flags: bool = False
    backpressure: bool = True
    set_global_provider: bool = True
    flush_on_sigterm: bool = True
    #: Report ``stats()`` through the global OpenTelemetry meter provider (``stats_as_metrics``).
    stats_as_metrics: bool = False
    #: Model prices for ``set_prices`` (``read_prices``): a mapping, JSON text, or a JSON file's path.
    #: Read and applied by ``install()``; a bad one is skipped there, logged once and counted.
    prices: Any = None

    @property
    def langfuse_enabled(self) -> bool:
        return self.langfuse_host is not None

    @property
    def local_store_enabled(self) -> bool:
        if self.local_store == "auto":  # with Langfuse: on for the spans unknown_tenant="local" keeps there
            return not self.langfuse_enabled or self.unknown_tenant == "local"
        return self.local_store == "on"

    @property
    def local_store_keeps_all(self) -> bool:
        """Whether the local store keeps a copy of every span, not only those ``unknown_tenant="local"``
        sends it: when it is on, or when there is no Langfuse."""
        return self.local_store == "on" or (self.local_store == "auto" and not self.langfuse_enabled)

    def __repr__(self) -> str:  # never show secrets
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if shown["secret_key"]:
            shown["secret_key"] = "***"
        body = ", ".join(f"{k}={v!r}" for k, v in shown.items() if k != "credentials")
        return f"Settings({body})"


_BOOLS = ("enabled", "trust_incoming_tenant", "capture_content", "stream_usage", "full_trace_flags", "backpressure",
          "set_global_provider", "flush_on_sigterm", "stats_as_metrics")
#: Integer settings and their least valid value, whatever their source.
_COUNTS = {"max_value_bytes": 256, "queue_size": 1, "max_export_batch": 1, "max_export_bytes": 1024, "max_retries": 0,
           "max_destination_queue": 1, "max_buffered_spans": 1, "max_tenants": 1, "export_workers": 1}
#: Durations and their largest valid value: a socket timeout or wait past the platform's time_t
#: fails every call, and an infinite one never ends (an export timeout of a day is already absurd).
_DURATIONS = {"retention_days": 100 * 366.0, "export_interval": 86_400.0, "export_timeout": 86_400.0,
              "tenant_idle_seconds": 366 * 86_400.0}
#: Durations that must also be longer than this: a shorter export interval spins the pipeline thread.
_LEAST_DURATIONS = {"export_interval": 0.001}
_MAX_EXPORT_WORKERS = 64
#: Retries of one batch at most: its backoff doubles per attempt (capped at 30 s), and a float of
#: 2**1024 does not exist (a batch's 1025th retry raised OverflowError and was lost, uncounted).
_MAX_RETRIES = 1000


_ENV: dict[str, tuple[tuple[str, ...], Callable[[str], Any]]] = {
    #: ``LANGFUSE_TRACING_ENABLED=false`` is how the Langfuse SDK is told to send nothing.
    "enabled": (("AUTOTRACE_ENABLED", "LANGFUSE_TRACING_ENABLED"), p.boolean),
    "service_name": (("AUTOTRACE_SERVICE_NAME", "OTEL_SERVICE_NAME"), str),
    #: As the Langfuse SDK reads them: ``LANGFUSE_BASE_URL`` first, ``LANGFUSE_HOST`` its deprecated name.
    "langfuse_host": (("AUTOTRACE_LANGFUSE_HOST", "LANGFUSE_BASE_URL", "LANGFUSE_HOST"), str),
    "public_key": (("LANGFUSE_PUBLIC_KEY",), str),
    "secret_key": (("LANGFUSE_SECRET_KEY",), str),
    "credentials": (("AUTOTRACE_CREDENTIALS_FILE",), p.as_path),
    "unknown_tenant": (("AUTOTRACE_UNKNOWN_TENANT",), p.choice),
    "trust_incoming_tenant": (("AUTOTRACE_TRUST_INCOMING_TENANT",), p.boolean),
    "tenant_baggage": (("AUTOTRACE_TENANT_BAGGAGE",), p.targets),
    "grpc_untraced_methods": (("AUTOTRACE_GRPC_UNTRACED_METHODS",), p.methods),
    "local_store": (("AUTOTRACE_LOCAL_STORE",), p.choice),
    "local_store_path": (("AUTOTRACE_LOCAL_STORE_PATH",), p.as_path),
    "retention_days": (("AUTOTRACE_RETENTION_DAYS",), p.positive_float),
    "local_store_max_mb": (("AUTOTRACE_LOCAL_STORE_MAX_MB",), p.positive_float),
    "capture_content": (("AUTOTRACE_CAPTURE_CONTENT",), p.boolean),
    "stream_usage": (("AUTOTRACE_STREAM_USAGE",), p.boolean),
    "max_value_bytes": (("AUTOTRACE_MAX_VALUE_BYTES",), p.positive_int),
    "queue_size": (("AUTOTRACE_QUEUE_SIZE", "OTEL_BSP_MAX_QUEUE_SIZE"), p.positive_int),
    "max_export_batch": (("AUTOTRACE_MAX_EXPORT_BATCH", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), p.positive_int),
    "max_export_bytes": (("AUTOTRACE_MAX_EXPORT_BYTES",), p.positive_int),
    "export_interval": (("AUTOTRACE_EXPORT_INTERVAL",), p.positive_float),
    "export_timeout": (("AUTOTRACE_EXPORT_TIMEOUT",), p.positive_float),
    "export_ca_file": (("AUTOTRACE_EXPORT_CA_FILE",), p.as_path),
    "export_client_cert": (("AUTOTRACE_EXPORT_CLIENT_CERT",), p.as_path),
    "export_client_key": (("AUTOTRACE_EXPORT_CLIENT_KEY",), p.as_path),
    "max_retries": (("AUTOTRACE_MAX_RETRIES",), int),
    "max_destination_queue": (("AUTOTRACE_MAX_DESTINATION_QUEUE",), p.positive_int),
    "max_buffered_spans": (("AUTOTRACE_MAX_BUFFERED_SPANS",), p.positive_int),
    "max_tenants": (("AUTOTRACE_MAX_TENANTS",), p.positive_int),
    "tenant_idle_seconds": (("AUTOTRACE_TENANT_IDLE_SECONDS",), p.positive_float),
    "export_workers": (("AUTOTRACE_EXPORT_WORKERS",), p.positive_int),
    "redact": (("AUTOTRACE_REDACT",), p.redact),
    "environment": (("AUTOTRACE_ENVIRONMENT", "LANGFUSE_TRACING_ENVIRONMENT"), str),
    "release": (("AUTOTRACE_RELEASE", "LANGFUSE_RELEASE"), str),
    "integrations": (("AUTOTRACE_INTEGRATIONS",), p.integrations),
    "disabled_integrations": (("AUTOTRACE_DISABLED_INTEGRATIONS",), p.names),
    "full_trace_flags": (("AUTOTRACE_FULL_TRACE_FLAGS",), p.boolean),
    "backpressure": (("AUTOTRACE_BACKPRESSURE",), p.boolean),
    "flush_on_sigterm": (("AUTOTRACE_FLUSH_ON_SIGTERM",), p.boolean),
    "stats_as_metrics": (("AUTOTRACE_STATS_AS_METRICS",), p.boolean),
    "prices": (("AUTOTRACE_PRICES",), str),  # read by ``install()``: a bad one does not stop it
}


def load_settings(overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build validated settings from keyword overrides, then the environment, then defaults."""
    env = os.environ if env is None else env
    overrides = dict(overrides or {})
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; valid settings: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for name, (variables, parse) in _ENV.items():
        variable = None if name in overrides else variable_given(variables, env)
        if variable is None:
            continue
        raw = env[variable]
        try:
            values[name] = parse(raw.strip())
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{variable}={raw!r} is invalid for setting {name!r}: {exc}") from None
    _warn_unknown_variables(env)
    _warn_sample_rate(env)
    if _sdk_disabled(env) and "enabled" not in overrides:
        values["enabled"] = False
    for name, value in overrides.items():
        overrides[name] = _keyword(name, value)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if "service_name" not in values:  # only the default is below OTEL_RESOURCE_ATTRIBUTES' service.name
        values["service_name"] = _resource_service_name(env) or DEFAULT_SERVICE_NAME
    if "local_store_path" not in values:
        values["local_store_path"] = default_store_path(env)
    queue_size = values.get("queue_size")
    if "max_export_batch" not in values and isinstance(queue_size, int) and 0 < queue_size < _DEFAULT_BATCH:
        values["max_export_batch"] = queue_size  # a small queue given alone: batches no larger than it
    settings = _validate(Settings(**values), overrides, env)
    _check_export_tls(settings, overrides, env)
    return settings


def _sdk_disabled(env: Mapping[str, str]) -> bool:
    """``OTEL_SDK_DISABLED=true`` (any case; OpenTelemetry reads no other value as true)."""
    return (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true"


def setting_source(name: str, overrides: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """Where setting ``name`` is read from: ``"keyword argument"``, the environment variable, or None
    (its default). ``overrides`` as ``load_settings`` holds them (a blank one is None: no value)."""
    if overrides.get(name) is not None:
        return "keyword argument"
    if name == "enabled" and name not in overrides and _sdk_disabled(env):
        return "OTEL_SDK_DISABLED"
    variable = None if name in overrides or name not in _ENV else variable_given(_ENV[name][0], env)
    if variable is None and name == "service_name" and _resource_service_name(env):
        return "OTEL_RESOURCE_ATTRIBUTES"
    return variable


def variable_given(variables: tuple[str, ...], env: Mapping[str, str]) -> str | None:
    """The first of a setting's ``variables`` set in ``env`` to more than blanks: the one it is read from."""
    return next((variable for variable in variables if (env.get(variable) or "").strip()), None)


def _resource_service_name(env: Mapping[str, str]) -> str | None:
    """``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``, read as OpenTelemetry reads it (``key=value``
    pairs separated by commas, values percent-decoded, the last one winning), or None."""
    found = None
    for item in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip() == "service.name":
            found = unquote(value.strip())
    return found or None


#: ``AUTOTRACE_*`` variables read elsewhere (the zero-code start and its marks of the processes it
#: started in, replays, the store's home).
_OTHER_VARIABLES = frozenset({"AUTOTRACE_HOME", "AUTOTRACE_TRACE_SUBPROCESSES", "AUTOTRACE_ACTIVATED_PID",
                              "AUTOTRACE_FORKED_PID", "AUTOTRACE_ACTIVATED_PROGRAM", "AUTOTRACE_REPLAY_FILE"})
#: A tenant's keys (``EnvCredentials``): ``AUTOTRACE_TENANT_<NAME>_PUBLIC_KEY`` and the like.
_TENANT_VARIABLE = re.compile(r"AUTOTRACE_TENANT_\w+_(?:PUBLIC_KEY|SECRET_KEY|HOST|BASE_URL|ID)")


def _warn_sample_rate(env: Mapping[str, str]) -> None:
    """Say once that ``LANGFUSE_SAMPLE_RATE`` (the Langfuse SDK's) samples nothing here when no
    ``OTEL_TRACES_SAMPLER`` (which autotrace's tracer provider reads) does."""
    rate = (env.get("LANGFUSE_SAMPLE_RATE") or "").strip()[:40]
    try:
        every = float(rate) == 1.0
    except ValueError:
        every = not rate
    if not every and not (env.get("OTEL_TRACES_SAMPLER") or "").strip():
        log_once("config_sample_rate", "autotrace: LANGFUSE_SAMPLE_RATE=%s is the Langfuse SDK's, not read by "
                 "autotrace: every trace is sent; sample with OTEL_TRACES_SAMPLER=parentbased_traceidratio and "
                 "OTEL_TRACES_SAMPLER_ARG=%s", rate, rate)


def _warn_unknown_variables(env: Mapping[str, str]) -> None:
    """Say once which ``AUTOTRACE_*`` variables no setting reads (a typo such as
    ``AUTOTRACE_CAPTURE_CONTNET`` would otherwise leave its setting silently at its default)."""
    known = {variable for variables, _ in _ENV.values() for variable in variables} | _OTHER_VARIABLES
    unknown = sorted(name for name in env if name.startswith("AUTOTRACE_") and name not in known
                     and not _TENANT_VARIABLE.fullmatch(name))
    for i, name in enumerate(unknown):  # each counted once, however often settings are read; 20 said
        said = i < 20
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.85) if said else None
        if log_once(f"config_unknown:{name}", "autotrace: %s is not a setting autotrace reads%s", name,
                    f" (did you mean {close[0]}?)" if close else "", level=logging.WARNING if said else logging.DEBUG):
            count("config_unknown_variables")


_DEFAULT_BATCH = Settings.max_export_batch
_LISTS = ("integrations", "disabled_integrations", "redact", "tenant_baggage", "grpc_untraced_methods")
_TLS_FILES = ("export_ca_file", "export_client_cert", "export_client_key")
_PATHS = ("local_store_path", "credentials", *_TLS_FILES)


def absolute_path_variables(env: Mapping[str, str]) -> dict[str, str]:
    """``env``'s path variables that are set (``AUTOTRACE_HOME``, the store, credentials and TLS files,
    a prices file) with ``~`` expanded and made absolute here, as ``install()`` reads them now. For
    ``autotrace run``: the program's processes read them again, each in its own directory, so a
    worker spawned after the program changed directory wrote to another store (or found no file)."""
    names = ("AUTOTRACE_HOME", "AUTOTRACE_PRICES", *(variable for name in _PATHS for variable in _ENV[name][0]))
    found = {}
    for name in names:
        raw = (env.get(name) or "").strip()
        if raw and not (name == "AUTOTRACE_PRICES" and raw.startswith("{")):  # prices may be JSON text
            found[name] = str(p.as_path(raw))
    return found


def _keyword(name: str, value: Any) -> Any:
    """A keyword setting read as its environment variable would be (e.g. from the application's own
    config): a string stripped, then parsed (a blank one is no value); a list's text items stripped,
    blank ones left out; a path absolute, ``~`` expanded."""
    if isinstance(value, str):
        if not value.strip():
            return None
        parse = _ENV[name][1] if name in _ENV else p.boolean if name in _BOOLS else str
        try:
            return parse(value.strip())
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{name}={value!r} is invalid for setting {name!r}: {exc}") from None
    if name == "tenant_baggage" and isinstance(value, bool):
        return ("*",) if value else ()
    if name in _LISTS and isinstance(value, list | tuple | set | frozenset):
        return tuple(v.strip() if isinstance(v, str) else v for v in value if not isinstance(v, str) or v.strip())
    if name in _PATHS and isinstance(value, os.PathLike):
        path = os.fspath(value)
        return p.as_path(path) if isinstance(path, str) else path  # a bytes path is refused by _validate
    return value


def _validate(settings: Settings, overrides: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    def fail(name: str, message: str, *also: str) -> None:
        """Refuse setting ``name`` (with ``also``), naming the variables they were read from."""
        read = dict.fromkeys(setting_source(n, overrides, env) for n in (name, *also))
        variables = [v for v in read if v not in (None, "keyword argument")]
        raise ConfigError(f"setting {name!r}: {message}" + (f" (from {', '.join(variables)})" if variables else ""))

    if settings.unknown_tenant not in _POLICIES:
        fail("unknown_tenant", f"must be one of {', '.join(_POLICIES)}, got {settings.unknown_tenant!r}")
    if settings.local_store not in _LOCAL_MODES:
        fail("local_store", f"must be one of {', '.join(_LOCAL_MODES)}, got {settings.local_store!r}")
    if settings.langfuse_host is not None:
        problem = p.http_url_problem(settings.langfuse_host)
        if problem:
            fail("langfuse_host", f"must be an http(s) URL such as https://langfuse.example.com, got "
                 f"{p.shown_url(settings.langfuse_host)!r} ({problem})")
    for name in _BOOLS:
        if not isinstance(getattr(settings, name), bool):
            fail(name, f"must be true or false, got {getattr(settings, name)!r}")
    for name, least in _COUNTS.items():
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            fail(name, f"must be an integer >= {least}, got {value!r}")
    for name, most in _DURATIONS.items():
        value = getattr(settings, name)
        least = _LEAST_DURATIONS.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float) or not least < value <= most:
            fail(name, f"must be a number > {least:g} and <= {most:g}, got {value!r}")
    cap = settings.local_store_max_mb
    if isinstance(cap, bool) or not isinstance(cap, int | float) or not 0 < cap < math.inf:
        fail("local_store_max_mb", f"must be a positive number of MiB, got {cap!r}")
    if settings.max_retries > _MAX_RETRIES:
        fail("max_retries", f"must be at most {_MAX_RETRIES} (each retry waits up to 30 s), got {settings.max_retries}")
    if settings.export_workers > _MAX_EXPORT_WORKERS:
        fail("export_workers", f"must be at most {_MAX_EXPORT_WORKERS} (eight times as many start while "
             f"endpoints hang), got {settings.export_workers}")
    for name in ("service_name", "environment", "release"):  # else a resource or span attribute of any type
        if getattr(settings, name) is not None and not isinstance(getattr(settings, name), str):
            fail(name, f"must be a string, got a {type(getattr(settings, name)).__name__}")
    if not isinstance(settings.local_store_path, Path):  # str and path-like ones are made Paths by now
        fail("local_store_path", f"must be a path, got a {type(settings.local_store_path).__name__}")
    if settings.environment is not None and not ENVIRONMENT_NAME.match(settings.environment):
        fail("environment", "must match ^(?!langfuse)[a-z0-9_-]+$ and be at most 40 characters")
    if isinstance(settings.public_key, str) and settings.public_key.startswith("sk-lf-"):  # shown as not secret
        fail("public_key", "holds a secret key (sk-lf-...): are LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY swapped?")
    if (settings.public_key is None) != (settings.secret_key is None):
        fail("public_key", "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY must be set together")
    if settings.langfuse_enabled and settings.public_key is not None:
        try:  # checked here, not first by the router: install() has not stopped the running install yet
            Credentials(settings.public_key, settings.secret_key)  # type: ignore[arg-type]
        except CredentialsError as exc:
            fail("public_key", f"the default project's key pair is invalid: {exc}", "secret_key")
    if settings.unknown_tenant == "local" and settings.local_store == "off" and settings.langfuse_enabled:
        fail("unknown_tenant", "'local' keeps spans in the local store, which local_store='off' turns off",
             "local_store")
    if settings.unknown_tenant == "default" and settings.public_key is None and settings.langfuse_enabled:
        fail("unknown_tenant", "'default' needs LANGFUSE_PUBLIC_KEY/LANGFUSE_SECRET_KEY for the default project")
    if settings.tenant_resolver is not None and not callable(settings.tenant_resolver):
        fail("tenant_resolver", "must be a callable returning a tenant id or None")
    elif inspect.iscoroutinefunction(settings.tenant_resolver) or inspect.iscoroutinefunction(
            type(settings.tenant_resolver).__call__):  # (an object whose ``__call__`` is async)
        fail("tenant_resolver", "must be a plain function, not async: it is called where a span starts, "
             "where nothing awaits it")
    if settings.grpc_tenant_from_call is not None and not callable(settings.grpc_tenant_from_call):
        fail("grpc_tenant_from_call", "must be a callable of (handler_call_details, servicer_context) "
             "returning a tenant id or None")
    try:
        settings = dataclasses.replace(settings, redact=p.redact(settings.redact))
    except ValueError as exc:
        fail("redact", str(exc))
    if settings.max_export_batch > settings.queue_size:
        fail("max_export_batch", f"must not exceed queue_size ({settings.max_export_batch} > {settings.queue_size})",
             "queue_size")
    patterns = settings.tenant_baggage
    if not isinstance(patterns, tuple) or not all(isinstance(p, str) and p for p in patterns):
        fail("tenant_baggage", "must be 'all', 'none', True, False or a list of channel target patterns")
    methods = settings.grpc_untraced_methods
    if not isinstance(methods, tuple) or not all(isinstance(p, str) and p for p in methods):
        fail("grpc_untraced_methods", "must be 'none' or a list of method patterns ('/grpc.health.v1.Health/*')")
    if stray := [m for m in methods if not m.startswith(("/", "*", "?", "["))]:  # would silently match no call
        fail("grpc_untraced_methods", f"pattern {stray[0][:80]!r} matches no call: full method names start "
             "with '/' ('/grpc.health.v1.Health/*'); 'none' traces every call")
    for name in ("integrations", "disabled_integrations"):
        value = getattr(settings, name)
        if value is not None and (not isinstance(value, tuple) or not all(isinstance(v, str) for v in value)):
            fail(name, "must be a list of integration names")
    return settings


def _check_export_tls(settings: Settings, overrides: Mapping[str, Any], env: Mapping[str, str]) -> None:
    """The export TLS files: paths, a key only with a certificate, and (with Langfuse on) files
    that can be read and used, as an export would read them. A ``ConfigError`` names the setting and
    where it came from (never the file's content)."""
    def fail(name: str, message: str) -> None:
        source = setting_source(name, overrides, env) or "default"
        raise ConfigError(f"setting {name!r} (from {source}): {message}")

    for name in _TLS_FILES:
        value = getattr(settings, name)
        if value is not None and not isinstance(value, Path):  # str and path-like ones are made Paths by now
            fail(name, f"must be a file's path, got a {type(value).__name__}")
    if settings.export_client_key is not None and settings.export_client_cert is None:
        fail("export_client_key", "is set without export_client_cert (AUTOTRACE_EXPORT_CLIENT_CERT)")
    if settings.enabled and settings.langfuse_enabled and (settings.export_ca_file or settings.export_client_cert):
        from .export.tls import TlsFileError, check_files  # here: most installs set no TLS file

        try:
            check_files(settings)
        except TlsFileError as exc:
            fail(exc.setting, str(exc))


def read_prices(value: Any) -> Mapping[str, Any]:
    """The ``prices`` setting as ``set_prices`` takes it: a mapping as given, else JSON text (an
    object, ``{"my-model": {"input": 1.0, "output": 2.0}}``) or the path of a file holding it."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and value.lstrip().startswith("{"):
        text = value
    elif isinstance(value, str | os.PathLike):
        # utf-8-sig: a file an editor saved with a byte order mark (Notepad, PowerShell) was no JSON
        text = p.as_path(os.fspath(value)).read_text(encoding="utf-8-sig")  # type: ignore[arg-type]
    else:
        raise ValueError(f"expected a mapping, JSON text or a file path, not a {type(value).__name__}")
    found = json.loads(text)
    if not isinstance(found, dict):
        raise ValueError(f"expected a JSON object of model names to prices, not a {type(found).__name__}")
    return found
