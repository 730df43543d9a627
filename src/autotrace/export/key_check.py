"""Checking Langfuse keys before any span depends on them (``autotrace check``).

Each key pair is tried the way exports use it: an OTLP export request holding no span, sent to
``{host}/api/public/otel/v1/traces`` with the export's headers, through the same proxy, TLS
settings and connection code. Langfuse checks the keys before it reads the body and stores nothing
for an empty request, so the answer says whether that tenant's spans would be taken. The project
the keys belong to is then read from ``GET {host}/api/public/projects`` (best effort: a server
that does not answer it still passes). Nothing here raises for a network or server failure, and
no result holds a secret.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from .connections import ConnectionPool
from .credentials import (
    Credentials,
    CredentialsError,
    CredentialsResolver,
    LookupFailed,
    configured_tenants,
    files_not_read,
    to_credentials,
)
from .langfuse import OTLP_PATH, LangfuseSink
from .otlp_http import HttpTarget
from .sink import OK, SinkResult

PROJECTS_PATH = "/api/public/projects"
#: Checks run at once (each waits on the network, at most its timeout).
MAX_PARALLEL = 8

#: What a check found, worst last: the order in which a summary counts them.
OUTCOMES = ("ok", "missing", "refused", "unreachable", "failed")


@dataclasses.dataclass(frozen=True)
class KeyCheck:
    """One key pair's check: ``outcome`` is one of ``OUTCOMES``; ``detail`` says why, in one line."""

    name: str
    outcome: str
    detail: str
    host: str | None = None
    public_key: str | None = None
    #: The forward proxy the request went through (``host:port``), if any.
    proxy: str | None = None
    project: str | None = None
    project_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """Where the keys were tried and what came of it, in one line."""
        if self.host is None:
            return self.detail
        known = [f"key {self.public_key}"] if self.public_key else []
        if self.proxy:
            known.append(f"via proxy {self.proxy}")
        found = self.detail
        if self.project:
            found = f'project "{self.project}"' + (f" ({self.project_id})" if self.project_id else "") + f", {found}"
        return f"{self.host} ({', '.join(known)}): {found}"


def check_all(named: Sequence[tuple[str, Credentials | LookupFailed | None]], default_host: str | None,
              timeout: float, pool: ConnectionPool) -> list[KeyCheck]:
    """Check each (name, credentials) pair, in order; None credentials is ``missing``, a lookup
    that failed ``failed``."""
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(named)))) as workers:
        return list(workers.map(lambda item: check_keys(item[0], item[1], default_host, timeout, pool), named))


def check_keys(name: str, credentials: Credentials | LookupFailed | None, default_host: str | None, timeout: float,
               pool: ConnectionPool) -> KeyCheck:
    """Try ``credentials`` against its Langfuse (its own host, else ``default_host``)."""
    if credentials is None:
        return KeyCheck(name, "missing", "no keys found for this tenant")
    if isinstance(credentials, LookupFailed):
        return KeyCheck(name, "failed", f"the credentials lookup failed ({credentials})")
    try:  # a resolver of the user's may answer as a callable may (a mapping, a pair), or with junk
        credentials = to_credentials(credentials)
    except CredentialsError as exc:
        return KeyCheck(name, "failed", f"the credentials lookup answered no key pair ({exc})")
    if credentials is None:
        return KeyCheck(name, "missing", "no keys found for this tenant")
    host = (credentials.host or default_host or "").rstrip("/")
    if not host:
        return KeyCheck(name, "failed", "no Langfuse host (LANGFUSE_HOST, or the tenant's own host)",
                        public_key=credentials.public_key)
    sink = LangfuseSink(host, credentials, timeout=timeout, pool=pool)
    target = sink.targets()[0]
    proxy = target.proxy.name if target.proxy is not None else None
    found = KeyCheck(name, "ok", "", host, credentials.public_key, proxy)
    try:
        result = sink.probe()
        if not result.ok:
            return dataclasses.replace(found, outcome=_failure(result), detail=_describe(result))
        project = _project(HttpTarget(host + PROJECTS_PATH, timeout, pool), credentials)
    finally:
        sink.close()
    detail = "spans accepted" + (f"; the endpoint warns: {result.message}" if result.message else "")
    return dataclasses.replace(found, detail=detail, project=project.get("name"), project_id=project.get("id"))


def _failure(result: SinkResult) -> str:
    if result.status in (401, 403):
        return "refused"
    return "unreachable" if result.retryable and not result.status else "failed"


#: What the network failures a check meets most mean, by the reason the export gives them.
_NETWORK_FAILURES = {
    "gaierror": "the host name does not resolve",
    "ConnectionRefusedError": "nothing listens on that port",
    "TimeoutError": "no answer within the timeout",
    "ResolveTimeout": "the host name did not resolve within the timeout",
    "SSLCertVerificationError": "its TLS certificate is not trusted (see AUTOTRACE_EXPORT_CA_FILE)",
    "ProxyCertificateError": "the proxy's TLS certificate is not trusted (see AUTOTRACE_EXPORT_CA_FILE)",
    "ConnectionResetError": "the connection was reset",
}


def _describe(result: SinkResult) -> str:
    """One line on a failed check; the status alone for an HTTP answer (its body may echo anything)."""
    if result.status in (401, 403):
        return f"HTTP {result.status}: Langfuse did not accept these keys"
    if result.status == 404:
        return f"HTTP 404: no OTLP endpoint at {OTLP_PATH} on this host"
    meaning = _NETWORK_FAILURES.get(result.reason or "")
    return f"{meaning} ({result.reason})" if meaning else result.described or "failed"


def _project(target: HttpTarget, credentials: Credentials) -> dict[str, str]:
    """The project the keys belong to (``name``, ``id``), as Langfuse's projects API gives it; empty
    when it does not answer or its answer names none."""
    answer: list[bytes] = []

    def keep(body: bytes, _headers: Any) -> SinkResult:
        answer.append(body)
        return OK

    try:
        result = target.send(b"", {"Authorization": credentials.authorization_header(),
                                   "Accept": "application/json"}, keep, method="GET")
        if not (result.ok and answer):
            return {}
        projects = json.loads(answer[0]).get("data")
        first = projects[0] if isinstance(projects, list) and projects else None
        if not isinstance(first, dict):
            return {}
        return {key: str(first[key])[:200] for key in ("name", "id") if isinstance(first.get(key), str | int)}
    except (ValueError, AttributeError):  # not JSON, or not the shape the API documents
        return {}
    finally:
        target.close()


def sharing_a_project(checks: Sequence[KeyCheck]) -> list[list[str]]:
    """The names whose accepted keys reach the same project (the same project id, or the same
    public key, on the same host), each group once: one tenant's traces would be seen in another's
    project, or unknown tenants' (sent with the default keys) in a tenant's."""
    groups: dict[tuple[str | None, str | None], list[str]] = {}
    for check in checks:
        if check.ok:
            groups.setdefault((_origin(check.host), check.project_id or check.public_key), []).append(check.name)
    return [names for names in groups.values() if len(names) > 1]


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(host: str | None) -> str | None:
    """``host`` as the server it reaches: scheme and name in lower case, the scheme's default port
    left out, no trailing slash (``https://LF.example.com:443/`` is ``https://lf.example.com``)."""
    if host is None:
        return None
    try:
        parts = urlsplit(host)
        port = parts.port
    except ValueError:
        return host
    scheme = parts.scheme.lower()
    shown = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    netloc = shown if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{shown}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def tenants_to_check(resolver: CredentialsResolver | None, named: Sequence[str], limit: int) -> tuple[list[str], int]:
    """The tenants to check: ``named``, else those the resolver can list (sorted), at most ``limit``;
    and how many listed ones were left out."""
    if named:
        return list(dict.fromkeys(named)), 0
    listed = sorted(set(configured_tenants(resolver))) if resolver is not None else []
    return listed[:limit], max(0, len(listed) - limit)


def files_to_report(resolver: CredentialsResolver | None) -> list[tuple[str, LookupFailed]]:
    """A failed check for each credentials file never read (missing, unreadable, invalid): none of
    its tenants could be listed, and a run that checked only the others would pass."""
    return [("credentials file", LookupFailed(why)) for why in files_not_read(resolver)]
