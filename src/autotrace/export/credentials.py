"""Tenant credentials: which Langfuse key pair (and optionally host) each tenant exports with.

Resolvers: a static mapping, a TOML/JSON file (``credentials_file``: secrets by environment-variable
reference, reloaded on change), environment variables, or a callable such as a secret-store client (TTL-cached).
``resolve()`` returns the keys, or None when the tenant has none; it raises only ``LookupFailed``,
when the lookup failed with nothing known of the tenant, or the tenant's own keys are unusable
(invalid, or half set). Secrets never appear in reprs, logs or error messages.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .._config_parse import http_url_problem, shown_url
from .._internal import count, guarded_failure, log_once

Clock = Callable[[], float]


class CredentialsError(ValueError):
    """Invalid credentials (the message never contains the secret)."""


def _check_key(name: str, value: object) -> str:
    """Refuse what no Langfuse key holds and HTTP cannot carry as is: whitespace, control
    characters, anything but printable ASCII (a zero-width space pasted along, say)."""
    if not isinstance(value, str) or not value:
        raise CredentialsError(f"{name} must be a non-empty string")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise CredentialsError(f"{name} must not contain whitespace or control characters")
    if not value.isascii():
        raise CredentialsError(f"{name} must hold only printable ASCII characters")
    return value


def _check_public_key(value: object) -> None:
    """A public key is sent in the clear (``x-langfuse-public-key``, reprs): never a secret key;
    and before the ``:`` of Basic authentication, which it cannot hold."""
    key = _check_key("public_key", value)
    if ":" in key:
        raise CredentialsError("public_key must not contain ':' (Basic authentication would split it)")
    if key.startswith("sk-lf-"):
        raise CredentialsError("public_key holds a secret key (sk-lf-...): are the two keys swapped?")


@dataclass(frozen=True)
class Credentials:
    """One Langfuse project's key pair; ``host`` overrides the cluster-wide Langfuse host."""

    public_key: str
    secret_key: str = field(repr=False)
    host: str | None = None

    def __post_init__(self) -> None:
        for name in ("public_key", "secret_key", "host"):  # as environment variables are read: a secret
            value = getattr(self, name)  # read from a file or a store ends with a newline; no key holds one
            if isinstance(value, str) and value != value.strip():
                object.__setattr__(self, name, value.strip())
        _check_public_key(self.public_key)
        _check_key("secret_key", self.secret_key)
        if self.host is not None:
            problem = http_url_problem(self.host)
            if problem is not None:  # a user and password in it would be sent nowhere, and shown nowhere
                shown = shown_url(self.host) if isinstance(self.host, str) else type(self.host).__name__
                raise CredentialsError(f"host {shown!r} must be an http(s) URL of a Langfuse: {problem}")

    def __repr__(self) -> str:
        host = shown_url(self.host) if isinstance(self.host, str) else self.host
        return f"Credentials(public_key={self.public_key!r}, secret_key='***', host={host!r})"

    __str__ = __repr__

    def authorization_header(self) -> str:
        token = base64.b64encode(f"{self.public_key}:{self.secret_key}".encode()).decode("ascii")
        return f"Basic {token}"

    @property
    def fingerprint(self) -> str:
        """A short digest that tells rotations apart without revealing the secret."""
        return hashlib.sha256(f"{self.public_key}\0{self.secret_key}".encode()).hexdigest()[:16]


class LookupFailed(Exception):
    """A tenant's credentials could not be looked up (the secret store or file failed) and nothing
    is known of them: not the same as the answer that the tenant has none (``resolve`` -> None).
    The router never treats such a tenant as unknown (its spans never go to the default project)."""


def to_credentials(value: Any) -> Credentials | None:
    """Accept ``Credentials``, a mapping with public_key/secret_key[/host or base_url], or a (public, secret) pair.
    A coroutine (an ``async`` lookup) is closed, never awaited: lookups run on export threads."""
    if value is None or isinstance(value, Credentials):
        return value
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()  # else "never awaited" warnings, one per lookup
        raise CredentialsError("the credentials lookup returned an awaitable: give a function that is not async")
    if isinstance(value, Mapping):
        return Credentials(value.get("public_key"), value.get("secret_key"), host_of(value))  # type: ignore[arg-type]
    if isinstance(value, tuple | list) and len(value) in (2, 3):
        return Credentials(*value)
    raise CredentialsError(f"cannot build credentials from a {type(value).__name__}")


def host_of(entry: Mapping[str, Any]) -> Any:
    """A mapping's host: ``host``, or ``base_url`` (the Langfuse SDK's name for it, as in
    ``Langfuse(**keys)``), never ignored: the keys would go to the default host. Both, naming
    different hosts, raise ``CredentialsError`` (a blank or a trailing ``/`` is no difference: the
    export drops both)."""
    host, base_url = entry.get("host"), entry.get("base_url")
    if host is not None and base_url is not None and _same_url(host) != _same_url(base_url):
        raise CredentialsError("host and base_url name different hosts: give one")
    return host if host is not None else base_url


def _same_url(value: Any) -> Any:
    return value.strip().rstrip("/") if isinstance(value, str) else value


@runtime_checkable
class CredentialsResolver(Protocol):
    def resolve(self, tenant: str) -> Credentials | None: ...


class _Counted:
    def __init__(self) -> None:
        self._stats = {"resolved": 0, "unknown": 0, "errors": 0, "evictions": 0}

    def _note(self, result: Credentials | None) -> Credentials | None:
        self._stats["resolved" if result is not None else "unknown"] += 1
        return result

    def stats(self) -> dict[str, int]:
        return dict(self._stats)

    def close(self) -> None:
        """Nothing to release by default."""

    def after_fork(self) -> None:
        """In a forked child: forget locks and lookups of the parent's threads (none by default)."""


class StaticCredentials(_Counted):
    """A fixed tenant -> credentials mapping."""

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        super().__init__()
        self._mapping = {tenant: to_credentials(value) for tenant, value in mapping.items()}

    def resolve(self, tenant: str) -> Credentials | None:
        return self._note(self._mapping.get(tenant))

    def known_tenants(self) -> list[str]:
        """The tenants this mapping has keys for."""
        return [tenant for tenant, credentials in self._mapping.items() if credentials is not None]


def _variable(environ: Mapping[str, str], name: str) -> str | None:
    """An environment variable's value stripped, as settings are read (a secret mounted from a file
    ends with a newline; no key, id or host holds a blank); None when unset or blank."""
    return (environ.get(name) or "").strip() or None


#: The variables of a tenant's two keys (``EnvCredentials.configured_tenants``).
_KEY_VARIABLES = ("_PUBLIC_KEY", "_SECRET_KEY")


class EnvCredentials(_Counted):
    """``<PREFIX><NAME>_PUBLIC_KEY`` / ``_SECRET_KEY`` / ``_HOST`` (or ``_BASE_URL``, as ``LANGFUSE_BASE_URL``
    names the host), read on every call (rotation-safe).

    ``NAME`` is the tenant id upper-cased with every character other than ``A-Z a-z 0-9`` turned
    into ``_``. Several ids share a name (``acme-corp``, ``acme.corp``, ``acme_corp``), so a name
    belongs to exactly ONE id: the one in ``<PREFIX><NAME>_ID`` when that is set, otherwise only
    the id ``NAME.lower()`` (an id of ``[a-z0-9_]``). Any other id sharing the name is unknown:
    two tenants can never read the same keys. Keys half set or invalid raise ``LookupFailed``.
    """

    def __init__(self, prefix: str = "AUTOTRACE_TENANT_", environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.prefix = prefix
        self._environ = environ if environ is not None else os.environ

    def _get(self, variable: str) -> str | None:
        return _variable(self._environ, variable)

    def resolve(self, tenant: str) -> Credentials | None:
        name = re.sub(r"[^A-Za-z0-9]", "_", tenant).upper()
        key = self.prefix + name
        owner = self._get(key + "_ID") or name.lower()
        if owner != tenant:
            return self._note(None)
        public, secret = self._get(key + "_PUBLIC_KEY"), self._get(key + "_SECRET_KEY")
        if not public and not secret:
            return self._note(None)
        try:  # keys of its own, unusable: not an unknown tenant (never the default project's)
            host = host_of({"host": self._get(key + "_HOST"), "base_url": self._get(key + "_BASE_URL")})
            return self._note(Credentials(public, secret, host))  # type: ignore[arg-type]
        except CredentialsError as exc:
            self._stats["errors"] += 1
            log_once(f"env_credentials:{key}", "autotrace: credentials in %s_* are invalid: %s", key, exc)
            raise LookupFailed(f"credentials in {key}_* are invalid") from None

    def known_tenants(self) -> list[str]:
        """The tenants whose keys the environment holds: each ``<PREFIX><NAME>_PUBLIC_KEY`` with its
        secret set, as the id its name belongs to."""
        return self._listed(complete=True)

    def configured_tenants(self) -> list[str]:
        """Those and the tenants given half their keys (a ``_SECRET_KEY`` misspelt, say): ``get``
        fails them, and ``autotrace check`` reports them."""
        return self._listed(complete=False)

    def _listed(self, complete: bool) -> list[str]:
        found: dict[str, None] = {}
        for variable, value in self._environ.items():
            if not (variable.startswith(self.prefix) and variable.endswith(_KEY_VARIABLES) and value.strip()):
                continue
            key = variable[:-len("_PUBLIC_KEY")]  # (as long as "_SECRET_KEY")
            name = key[len(self.prefix):]
            if not name or (complete and not (self._get(key + "_PUBLIC_KEY") and self._get(key + "_SECRET_KEY"))):
                continue
            found[self._get(key + "_ID") or name.lower()] = None
        return list(found)


class CallableCredentials(_Counted):
    """Wraps ``fn(tenant)`` (a secret store, say) with a bounded TTL cache.

    Concurrent lookups of one tenant call ``fn`` once; when ``fn`` fails the last value is reused.
    """

    def __init__(self, fn: Callable[[str], Any], ttl: float = 300.0, negative_ttl: float = 30.0,
                 max_entries: int = 10_000, clock: Clock = time.monotonic) -> None:
        super().__init__()
        self._fn = fn
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[str, tuple[Credentials | None, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[str, threading.Lock] = {}

    def resolve(self, tenant: str) -> Credentials | None:
        """The tenant's keys (cached); when ``fn`` fails, the last answer, or ``LookupFailed`` if
        there is none."""
        try:
            return self._note(self._resolve(tenant))
        except LookupFailed:
            raise
        except Exception as exc:
            self._stats["errors"] += 1
            log_once(f"callable_credentials:{type(exc).__name__}", "autotrace: credentials lookup failed (%s)",
                     type(exc).__name__)
            raise LookupFailed(type(exc).__name__) from None

    def _fresh(self, tenant: str) -> tuple[bool, Credentials | None]:
        entry = self._cache.get(tenant)
        if entry is not None and entry[1] > self._clock():
            self._cache.move_to_end(tenant)
            return True, entry[0]
        return False, entry[0] if entry is not None else None

    def _resolve(self, tenant: str) -> Credentials | None:
        with self._lock:
            fresh, value = self._fresh(tenant)
            if fresh:
                return value
            gate = self._inflight.setdefault(tenant, threading.Lock())
        with gate:
            with self._lock:
                fresh, stale = self._fresh(tenant)
                if fresh:
                    return stale
            try:
                value = to_credentials(self._fn(tenant))
            except Exception as exc:
                self._stats["errors"] += 1
                log_once(f"credentials_fn:{type(exc).__name__}", "autotrace: credentials function %s; using the "
                         "previous credentials if any", f"answered keys that are invalid ({exc})"
                         if isinstance(exc, CredentialsError) else f"raised {type(exc).__name__}")
                with self._lock:
                    if tenant not in self._cache:  # never answered: nothing is known of its keys
                        raise LookupFailed(type(exc).__name__) from None
                return stale
            finally:
                with self._lock:
                    self._inflight.pop(tenant, None)
            with self._lock:
                ttl = self.ttl if value is not None else self.negative_ttl
                self._cache[tenant] = (value, self._clock() + ttl)
                self._cache.move_to_end(tenant)
                while len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
                    self._stats["evictions"] += 1
                    count("credentials_cache_evicted")  # more tenants than entries: the store is asked more
            return value

    def after_fork(self) -> None:
        """A parent's thread may have held a lock or been mid-lookup at ``fork``: start clean."""
        self._lock = threading.Lock()
        self._inflight = {}

    def invalidate(self, tenant: str | None = None) -> None:
        with self._lock:
            if tenant is None:
                self._cache.clear()
            else:
                self._cache.pop(tenant, None)


class ChainCredentials(_Counted):
    """The first resolver that knows the tenant wins."""

    def __init__(self, *resolvers: CredentialsResolver) -> None:
        super().__init__()
        self.resolvers = resolvers

    def resolve(self, tenant: str) -> Credentials | None:
        """The first keys found; ``LookupFailed`` when none is and a resolver failed (it may have
        known the tenant)."""
        failed = False
        for resolver in self.resolvers:
            try:
                found = resolver.resolve(tenant)
            except Exception:
                self._stats["errors"] += 1
                failed = True
                continue
            if found is not None:
                return self._note(found)
        if failed:
            raise LookupFailed("a credentials resolver failed")
        return self._note(None)

    def after_fork(self) -> None:
        for resolver in self.resolvers:
            reset_after_fork(resolver)

    def known_tenants(self) -> list[str]:
        """The tenants any resolver that can list them knows, each once."""
        return list(dict.fromkeys(tenant for resolver in self.resolvers for tenant in known_tenants(resolver)))

    def configured_tenants(self) -> list[str]:
        """The tenants any resolver that can list them names, with usable keys or not, each once."""
        return list(dict.fromkeys(tenant for resolver in self.resolvers for tenant in configured_tenants(resolver)))

    def invalidate(self, tenant: str | None = None) -> None:
        """Forget cached keys in every resolver that caches (the ones refused by an endpoint)."""
        for resolver in self.resolvers:
            invalidate = getattr(resolver, "invalidate", None)
            if callable(invalidate):
                invalidate(tenant)


def known_tenants(resolver: object) -> list[str]:
    """The tenants ``resolver`` can list (``known_tenants()``), if it can; a secret store's callable
    cannot, and is asked only about tenants named to it."""
    listing = getattr(resolver, "known_tenants", None)
    return [tenant for tenant in listing() if isinstance(tenant, str)] if callable(listing) else []


def configured_tenants(resolver: object) -> list[str]:
    """The tenants ``resolver`` names, also those whose keys are unusable (``configured_tenants()``),
    else ``known_tenants``: what ``autotrace check`` checks."""
    listing = getattr(resolver, "configured_tenants", None)
    if not callable(listing):
        return known_tenants(resolver)
    return [tenant for tenant in listing() if isinstance(tenant, str)]


def files_not_read(resolver: object) -> list[str]:
    """Why each credentials file of ``resolver`` (itself, or one in its chain) has never been read:
    its tenants are not listed, so ``autotrace check`` reports the file instead."""
    if isinstance(resolver, ChainCredentials):
        return [why for inner in resolver.resolvers for why in files_not_read(inner)]
    not_read = getattr(resolver, "not_read", None)  # a ``FileCredentials``
    why = not_read() if callable(not_read) else None
    return [why] if isinstance(why, str) else []


def reset_after_fork(resolver: object) -> None:
    """Call ``resolver.after_fork()`` if it has one (a user's resolver may not); never raises."""
    reset = getattr(resolver, "after_fork", None)
    if callable(reset):
        try:
            reset()
        except Exception as exc:
            log_once(f"credentials_after_fork:{type(exc).__name__}", "autotrace: credentials resolver "
                     "after_fork raised %s", type(exc).__name__)


def invalidate(resolver: object, tenant: str) -> None:
    """Have ``resolver``'s cache forget ``tenant``'s keys, if it has one (``invalidate``): its next
    lookup asks the secret store. Never raises."""
    forget = getattr(resolver, "invalidate", None)
    if callable(forget):
        try:
            forget(tenant)
        except Exception as exc:
            guarded_failure("credentials_invalidate", exc)


def coerce_resolver(value: Any) -> CredentialsResolver:
    """dict -> static, path -> file, callable -> cached callable, None -> environment, resolver -> itself."""
    if value is None:
        return EnvCredentials()
    if isinstance(value, str | Path):  # before the protocol check: Path has a resolve() of its own
        from .credentials_file import FileCredentials

        return FileCredentials(value)
    if isinstance(value, CredentialsResolver) and not isinstance(value, type):
        if inspect.iscoroutinefunction(value.resolve):
            raise CredentialsError("the resolver's resolve() is async: it is called on export threads, "
                                   "give a plain method")
        return value
    if isinstance(value, Mapping):
        return StaticCredentials(value)
    if callable(value):
        if inspect.iscoroutinefunction(value) or inspect.iscoroutinefunction(type(value).__call__):
            raise CredentialsError("the credentials function is async: it is called on export threads, "
                                   "give a plain function (wrap an async client with asyncio.run_coroutine_threadsafe)")
        return CallableCredentials(value)
    raise CredentialsError(f"credentials must be a mapping, a file path, a callable or a resolver, "
                           f"not {type(value).__name__}")
