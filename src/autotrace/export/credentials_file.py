"""Tenant credentials from a TOML or JSON file (``credentials=path``), secrets by environment
variable reference, reloaded on change; see ``FileCredentials``."""

from __future__ import annotations

import json
import os
import threading
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._internal import log_once
from .credentials import Clock, Credentials, CredentialsError, LookupFailed, _Counted, _variable, host_of


class FileCredentials(_Counted):
    """A TOML or JSON file: ``[tenants.acme] public_key = "..."  secret_key_env = "ACME_LF_SECRET"``.

    Reloaded when the file changes (checked at most every ``reload_interval`` seconds): its size,
    modification time, inode or change time (which no tool can set back, so a rotation deployed with
    the old timestamp, or within one tick of a coarse clock, is seen too). An invalid file keeps the
    last good mapping; invalid too: a key given twice (JSON as TOML), a tenant's field other than
    ``public_key``, ``secret_key`` or ``secret_key_env`` (one of the two), ``host`` (or ``base_url``). A tenant's
    malformed keys (``Credentials``) fail only that tenant's lookups (``LookupFailed``).
    """

    def __init__(self, path: str | Path, reload_interval: float = 5.0, clock: Clock = time.monotonic,
                 environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.reload_interval = reload_interval
        self._clock = clock
        self._environ = environ if environ is not None else os.environ
        self._lock = threading.Lock()
        self._mapping: dict[str, Credentials | None] = {}
        self._signature: tuple[int, ...] | None = None
        self._checked = float("-inf")
        #: Why the last read failed (None once one succeeded): ``not_read`` says it while none has.
        self._failure: str | None = None

    def _load(self) -> None:
        now = self._clock()
        if now - self._checked < self.reload_interval:
            return
        self._checked = now
        try:
            stat = self.path.stat()
        except OSError as exc:
            self._failure = f"cannot be read: {type(exc).__name__}"
            log_once(f"credentials_file:{self.path}:{type(exc).__name__}", "autotrace: cannot read credentials "
                     "file %s (%s); keeping the last good credentials", self.path, type(exc).__name__)
            return
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino, stat.st_dev, stat.st_ctime_ns)
        if signature == self._signature:
            return
        try:
            self._mapping = self._parse(self.path.read_bytes())
            self._signature, self._failure = signature, None
        except Exception as exc:
            self._failure = f"is invalid: {_safe_reason(exc)}"
            self._stats["errors"] += 1
            log_once(f"credentials_file:{self.path}:{type(exc).__name__}:{str(exc)[:80]}", "autotrace: credentials "
                     "file %s is invalid (%s); keeping the last good credentials", self.path, _safe_reason(exc))

    def _parse(self, raw: bytes) -> dict[str, Credentials | None]:
        """Each tenant's keys; None for one whose keys are invalid or whose secret's variable is unset
        (not an unknown tenant)."""
        text = raw.decode("utf-8-sig")  # a byte order mark (Notepad, PowerShell) is no TOML or JSON
        json_file = self.path.suffix.lower() == ".json"
        data = json.loads(text, object_pairs_hook=_unique_keys) if json_file else tomllib.loads(text)
        tenants = data.get("tenants") if isinstance(data, dict) else None
        if not isinstance(tenants, dict):
            raise CredentialsError("expected a 'tenants' table")
        mapping: dict[str, Credentials | None] = {}
        for tenant, entry in tenants.items():
            if not isinstance(entry, dict):
                raise CredentialsError(f"tenant {tenant!r} must be a table")
            _check_entry(tenant, entry)
            secret = entry.get("secret_key")
            env_name = entry.get("secret_key_env")
            if env_name is not None:
                secret = _variable(self._environ, env_name)
                if not secret:
                    log_once(f"credentials_env:{env_name}", "autotrace: environment variable %s (secret of tenant "
                             "%r) is not set; that tenant is not exported", env_name, tenant)
                    mapping[str(tenant)] = None
                    continue
            try:  # one tenant's malformed keys fail its lookups only, not every tenant's (the file's)
                mapping[str(tenant)] = Credentials(entry.get("public_key"), secret, host_of(entry))  # type: ignore[arg-type]
            except CredentialsError as exc:
                log_once(f"credentials_keys:{tenant}", "autotrace: keys of tenant %r in %s are invalid (%s); that "
                         "tenant is not exported", tenant, self.path, exc)
                mapping[str(tenant)] = None
        return mapping

    def after_fork(self) -> None:
        self._lock = threading.Lock()

    def known_tenants(self) -> list[str]:
        """The tenants the file gives keys for (one whose secret's variable is unset is left out)."""
        return [tenant for tenant, credentials in self._loaded() if credentials is not None]

    def configured_tenants(self) -> list[str]:
        """Every tenant the file names, also one whose secret's variable is unset (``autotrace check``
        reports it)."""
        return [tenant for tenant, _ in self._loaded()]

    def not_read(self) -> str | None:
        """Why the file has never been read (missing, unreadable or invalid since start-up): no
        tenant of it can be looked up, nor listed; None once it has been."""
        with self._lock:
            self._load()
            return None if self._signature is not None else f"credentials file {self.path} {self._failure or 'cannot be read'}"

    def _loaded(self) -> list[tuple[str, Credentials | None]]:
        with self._lock:
            self._load()
            return list(self._mapping.items())

    def resolve(self, tenant: str) -> Credentials | None:
        """The tenant's keys in the file's last good mapping; ``LookupFailed`` while the file has
        never been read (missing, unreadable or invalid since start-up), or for a tenant whose
        secret's variable is unset."""
        try:
            with self._lock:
                self._load()
                read, listed, found = self._signature is not None, tenant in self._mapping, self._mapping.get(tenant)
        except Exception as exc:
            self._stats["errors"] += 1
            log_once(f"credentials_file_resolve:{type(exc).__name__}", "autotrace: credentials lookup failed (%s)",
                     type(exc).__name__)
            raise LookupFailed(type(exc).__name__) from None
        if not read or (listed and found is None):
            self._stats["errors"] += 1
            raise LookupFailed(f"credentials file {self.path} not read yet" if not read
                               else f"tenant {tenant!r} has no usable keys (invalid, or its secret's variable unset)")
        return self._note(found)


#: What a tenant's table in a credentials file may hold.
_ENTRY_FIELDS = ("public_key", "secret_key", "secret_key_env", "host", "base_url")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: a tenant or a field given twice is refused, as
    TOML refuses it, rather than the last one silently taken."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise CredentialsError(f"key {key!r} is given twice in one object")
        found[key] = value
    return found


def _check_entry(tenant: str, entry: Mapping[str, Any]) -> None:
    """Refuse a tenant's table with a field no reader knows (``hots``: its keys would go to the
    default host, not the tenant's), or with its secret given two ways."""
    unknown = [name for name in entry if name not in _ENTRY_FIELDS]
    if unknown:
        raise CredentialsError(f"tenant {tenant!r} has unknown field(s) {', '.join(map(repr, unknown))}; "
                               f"valid: {', '.join(_ENTRY_FIELDS)}")
    if "secret_key" in entry and "secret_key_env" in entry:
        raise CredentialsError(f"tenant {tenant!r} gives both secret_key and secret_key_env: give one")
    env_name = entry.get("secret_key_env")
    if env_name is not None and (not isinstance(env_name, str) or not env_name.strip()):
        raise CredentialsError(f"tenant {tenant!r}: secret_key_env must name an environment variable")


def _safe_reason(exc: BaseException) -> str:
    """An error description that cannot echo file contents (secrets) back."""
    if isinstance(exc, CredentialsError):
        return str(exc)
    if isinstance(exc, json.JSONDecodeError):
        return f"JSON syntax error at line {exc.lineno}"
    if isinstance(exc, tomllib.TOMLDecodeError):
        return "TOML syntax error"
    return type(exc).__name__
