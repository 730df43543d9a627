"""W3C trace context and baggage across services.

Outgoing calls carry ``traceparent``/``tracestate`` and baggage with the tenant: the current
tenant (``autotrace.tenant`` scope, middleware or interceptor), never a tenant entry that merely
sits in the context's baggage (e.g. attached from an incoming request). By default the
trace flags carry only the sampled bit: otel-go releases before 2026 reject flags above 2 (the
W3C level-2 random-id bit that OTel Python sets) and silently start a new trace. Set
``full_trace_flags=True`` to send the flags unchanged. Baggage is read and written as W3C baggage
(percent-encoding: a ``+`` is a plus sign, a space ``%20``), not as OTel Python's propagator does
(form encoding, a ``+`` for a space), which otel-go and other W3C readers misread.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import quote

from opentelemetry import baggage, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, get_current
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ._internal import count, log_once
from .context import (
    TENANT_BAGGAGE_KEY,
    conflicting_tenants,
    current_tenant,
    without_tenant_baggage,
)
from .runtime import state

MAX_HEADER_LENGTH = 8192
PROPAGATION_KEYS = frozenset({"traceparent", "tracestate", "baggage"})
"""The headers ``inject`` writes (lower case)."""
_tracecontext = TraceContextTextMapPropagator()
_baggage = W3CBaggagePropagator()
#: True while incoming headers are read (``reading_headers``).
_reading: ContextVar[bool] = ContextVar("autotrace_reading_headers", default=False)


class _IncomingHeaderWarnings(logging.Filter):
    """OTel's propagators warn once per malformed baggage or ``tracestate`` member, quoting it:
    whatever a caller sent would reach the application's logs, on every request. While autotrace
    reads incoming headers, such warnings are counted (``propagation_invalid_<header>``) and said
    once, unquoted. Other uses of those loggers are left alone."""

    def __init__(self, header: str) -> None:
        super().__init__()
        self.counter = f"propagation_invalid_{header}"
        self.header = header

    def filter(self, record: logging.LogRecord) -> bool:
        if not _reading.get():
            return True
        count(self.counter)
        log_once(self.counter, "autotrace: malformed %s in an incoming request was ignored (counted as %s; "
                 "the header is not logged)", self.header, self.counter)
        return False


logging.getLogger("opentelemetry.baggage.propagation").addFilter(_IncomingHeaderWarnings("baggage"))
logging.getLogger("opentelemetry.trace.span").addFilter(_IncomingHeaderWarnings("tracestate"))


@contextmanager
def reading_headers() -> Iterator[None]:
    """Mark the block as reading an incoming request's headers (see ``_IncomingHeaderWarnings``)."""
    token = _reading.set(True)
    try:
        yield
    finally:
        _reading.reset(token)


def traceparent(context: Context | None = None, full_flags: bool | None = None) -> str | None:
    """The ``traceparent`` value for the current (or given) context; None without a valid span."""
    return _traceparent(trace.get_current_span(context).get_span_context(), full_flags)


def _traceparent(span_context: SpanContext, full_flags: bool | None) -> str | None:
    """``traceparent`` for ``span_context``."""
    if not span_context.is_valid:
        return None
    if full_flags is None:
        full_flags = bool(state.settings and state.settings.full_trace_flags)
    flags = int(span_context.trace_flags) if full_flags else int(span_context.trace_flags) & 0x01
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{flags:02x}"


#: ``tenant_baggage``'s default: the tenant travels with every outgoing call.
_EVERY_TARGET = ("*",)


#: gRPC's name-resolver schemes: a target ``dns:///rag-service:50051`` names ``rag-service:50051``.
_RESOLVER_SCHEMES = frozenset({"dns", "ipv4", "ipv6", "unix", "unix-abstract", "vsock", "xds", "passthrough"})


def _addresses(target: str) -> list[str]:
    """The addresses a channel target names, without the resolver's scheme or authority
    (``dns://8.8.8.8/host:port`` is ``host:port``); ``ipv4:`` and ``ipv6:`` list several."""
    scheme, colon, rest = target.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in _RESOLVER_SCHEMES:
        return [target]
    if rest.startswith("//"):  # the authority (a DNS server) is not the destination; ``unix://`` has
        rest = rest[2:] if scheme == "unix" else rest[2:].partition("/")[2]  # none: an absolute path
    return rest.split(",") if scheme in ("ipv4", "ipv6") else [rest]


#: An IPv6 literal in a pattern (``[::1]:50051``, ``[fd00:*]:*``): its brackets are the address's
#: own, not a character class (which would match one ``:`` or ``1``).
_IPV6_LITERAL = re.compile(r"\[([0-9A-Fa-f.*?]*:[0-9A-Za-z:.*?%_-]*)\]")


@functools.lru_cache(maxsize=16)
def _patterns(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """``tenant_baggage``'s patterns for ``fnmatchcase``, with IPv6 literals' brackets taken as written."""
    return tuple(_IPV6_LITERAL.sub(r"[[]\1]", pattern) for pattern in patterns)


def tenant_travels_to(target: str | None) -> bool:
    """Whether an outgoing call to ``target`` (a gRPC channel's target, None when not known) may
    carry the tenant, by the ``tenant_baggage`` setting: every target by default. A pattern
    matches the target as written or the address it names under a resolver scheme
    (``rag-service:*`` matches ``dns:///rag-service:50051``); every address of a list must match."""
    patterns = state.settings.tenant_baggage if state.settings is not None else _EVERY_TARGET
    if "*" in patterns:  # every target, also among other patterns (``rag-service:*,*``)
        return True
    if target is None:
        return False
    patterns = _patterns(tuple(patterns))
    if any(fnmatchcase(target, pattern) for pattern in patterns):
        return True
    addresses = _addresses(target)
    return addresses != [target] and all(
        address and any(fnmatchcase(address, pattern) for pattern in patterns) for address in addresses)


def inject(carrier: MutableMapping[str, str], context: Context | None = None,
           send_tenant: bool | None = None, target: str | None = None) -> MutableMapping[str, str]:
    """Write trace context and baggage (with the current tenant, or without any tenant entry when
    there is none or ``send_tenant`` is false) into ``carrier``. ``send_tenant`` None (the
    default): as ``tenant_baggage`` says for ``target`` (``host:port``; None, a destination not
    named, is told the tenant only when the setting is ``all``), as for a gRPC channel: a request
    to a third party never carries which customer it is for unless configured.

    Headers ``carrier`` already holds, in any case (an incoming request's, forwarded), are
    replaced, as for gRPC metadata: ``baggage`` always (its entries are kept, not its tenant's),
    ``traceparent`` and ``tracestate`` when there is a span to name. Left in place, a caller's
    tenant travelled on, a stale ``tracestate`` went with this trace, and ``Traceparent`` next to
    ``traceparent`` was two (no valid one)."""
    given = _taken(carrier, "baggage") if carrier else None
    if given:
        context = merge_baggage(given, context)
    span_context = trace.get_current_span(context).get_span_context()
    parent = _traceparent(span_context, None)
    if parent is not None:
        if carrier:
            _taken(carrier, "traceparent", "tracestate")
        carrier["traceparent"] = parent
        trace_state = span_context.trace_state
        if trace_state:
            carrier["tracestate"] = trace_state.to_header()
    if send_tenant is None:
        send_tenant = tenant_travels_to(target)
    header = _baggage_header(context, current_tenant() if send_tenant else None)
    if header:
        carrier["baggage"] = header
    return carrier


def _taken(carrier: MutableMapping[str, Any], *names: str) -> list[tuple[str, Any]]:
    """The headers of ``carrier`` named ``names`` (lower case), in any case, removed from it: every
    value of a header held several times (aiohttp's ``CIMultiDict``, ``http.server``'s
    ``HTTPMessage``, werkzeug's ``Headers``, whose ``[]`` gives the first only: a second
    ``baggage``'s entries were lost). Names are read from ``keys()``: iterating werkzeug's
    ``Headers`` gives (name, value) pairs, so none was found (a caller's tenant travelled on)."""
    found: list[tuple[str, Any]] = []
    every = getattr(carrier, "getall", None) or getattr(carrier, "get_all", None) or getattr(carrier, "getlist", None)
    keys = carrier.keys()
    for key in [key for key in keys if isinstance(key, str) and key.lower() in names]:
        if key in carrier:  # not a spelling of one a case-insensitive carrier gave already
            found += [(key, value) for value in (every(key) if callable(every) else [carrier[key]])]
            del carrier[key]
    return found


#: W3C baggage limits (with ``MAX_HEADER_LENGTH``): members in a header, bytes in one member.
_MAX_MEMBERS, _MAX_MEMBER_LENGTH = 180, 4096


def _member(key: object, value: object) -> str:
    """A baggage member, percent-encoded as W3C baggage readers (otel-go, Java, .NET) decode it: a
    space is ``%20``, a ``+`` is ``%2B``. OTel Python's propagator writes a space as ``+``, which
    those readers take as a plus sign (``Jane Doe`` arrived as ``Jane+Doe``); Python's reads both."""
    return quote(str(key), safe="") + "=" + quote(str(value), safe="")


@functools.lru_cache(maxsize=256)
def _tenant_member(tenant: str) -> str:
    """The tenant's baggage member (``_member``), for a ``str`` tenant: written once, not per call."""
    return _member(TENANT_BAGGAGE_KEY, tenant)


def _writable(key: object, value: object) -> str | None:
    """``_member`` of an entry, or None for one that has no UTF-8 text (a lone surrogate, a value
    whose ``str()`` raises): it is left out, as one that does not fit, rather than failing the
    whole ``inject`` (the call then went with no trace context and no tenant)."""
    try:
        return _member(key, value)
    except Exception:
        return None


def _baggage_header(context: Context | None, tenant: str | None) -> str:
    """The ``baggage`` value for ``context``'s entries (not its tenant entry) and ``tenant``, within
    the W3C limits: the tenant is kept, before any other entry; entries that do not fit or cannot
    be written (``_writable``), and entries with an empty key (``+=1`` from a caller reads so), are
    left out, counted as ``propagation_baggage_dropped``: otel-go ignores a whole header with one
    member it cannot read, the tenant's included. The tenant's member is written last."""
    own = [] if tenant is None else [
        _tenant_member(tenant) if type(tenant) is str else _member(TENANT_BAGGAGE_KEY, tenant)]
    every = baggage.get_all(context)
    alone = not every or (len(every) == 1 and TENANT_BAGGAGE_KEY in every)
    if alone and (not own or len(own[0]) <= _MAX_MEMBER_LENGTH):
        return own[0] if own else ""  # the common case: the tenant alone, or nothing
    entries = [(key, value) for key, value in every.items() if key != TENANT_BAGGAGE_KEY]
    members = own + [member for key, value in entries if key and (member := _writable(key, value))]
    kept: list[str] = []
    length = -1
    for member in members:
        fits = len(member) <= _MAX_MEMBER_LENGTH and length + 1 + len(member) <= MAX_HEADER_LENGTH
        if fits and len(kept) < _MAX_MEMBERS:
            kept.append(member)
            length += 1 + len(member)
    if len(kept) < len(entries) + (tenant is not None):
        count("propagation_baggage_dropped", len(entries) + (tenant is not None) - len(kept))
    if tenant is not None:
        kept.append(kept.pop(0))
    return ",".join(kept)


class _PairsGetter(Getter[Iterable[tuple[str, Any]]]):
    """Reads gRPC-style metadata (a sequence of key/value pairs)."""

    def get(self, carrier: Iterable[tuple[str, Any]], key: str) -> list[str] | None:
        values = [v.decode("latin-1") if isinstance(v, bytes) else str(v) for k, v in carrier if k.lower() == key]
        return values or None

    def keys(self, carrier: Iterable[tuple[str, Any]]) -> list[str]:
        return [k for k, _ in carrier]


PAIRS_GETTER = _PairsGetter()


def extract(carrier: Mapping[str, str] | Iterable[tuple[str, Any]] | None) -> Context:
    """A context with the remote parent and baggage from ``carrier``; malformed input is ignored."""
    if not carrier:
        return Context()
    try:
        common = _common(carrier) if type(carrier) in (list, tuple, dict) else None
        if common is not None:
            return common
        with reading_headers():
            return _extract(carrier, Context())
    except Exception:  # a hostile header must never break a request
        count("propagation_invalid_headers")
        return Context()


#: ``_common``'s forms: a well-formed ``traceparent`` (W3C's, lower-case hex, nothing after the flags),
#: and a short ``baggage`` of plain ``key=value`` members (no ``%``, ``+``, ``;``, blank or empty
#: member), which OTel's reading and ``_as_w3c_reads`` leave as they are.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_PLAIN_BAGGAGE = re.compile(r"[A-Za-z0-9._-]+=[A-Za-z0-9._:@/-]*(?:,[A-Za-z0-9._-]+=[A-Za-z0-9._:@/-]*)*")
#: ``_common``'s longest ``tracestate`` (OTel's limit) and ``baggage`` (fewer than W3C's 180 members).
_SHORT = 512


def _common(carrier: list[Any] | tuple[Any, ...] | dict[Any, Any]) -> Context | None:
    """The context of a common request, read in one pass, as ``_extract`` reads it: ``str`` names
    and values, at most one each of ``traceparent`` (``_TRACEPARENT``, a valid parent),
    ``tracestate`` and ``baggage`` (``_PLAIN_BAGGAGE``, at most one tenant), under lower-case
    names. None for anything else (nothing counted yet), for ``_extract`` to read."""
    found: dict[str, str] = {}
    for key, value in carrier.items() if type(carrier) is dict else carrier:
        if type(key) is not str:
            return None
        if key not in PROPAGATION_KEYS:
            if key.lower() in PROPAGATION_KEYS:
                return None
        elif key in found or type(value) is not str:
            return None
        else:
            found[key] = value
    header = found.get("baggage")  # first what may send it to ``_extract``: nothing is counted twice
    members = _plain_members(header) if header else ()
    if members is None:
        return None
    context = Context()
    parent = found.get("traceparent")
    if parent is not None:
        match = _TRACEPARENT.fullmatch(parent)
        if match is None:
            return None
        version, trace_hex, span_hex, flags = match.groups()
        trace_id, span_id, header = int(trace_hex, 16), int(span_hex, 16), found.get("tracestate")
        if version == "ff" or not (trace_id and span_id) or (header is not None and len(header) > _SHORT):
            return None
        state: TraceState | None = None
        if header is not None:
            token = _reading.set(True)  # a malformed member is counted (``_IncomingHeaderWarnings``)
            try:
                state = TraceState.from_header([header])
            finally:
                _reading.reset(token)
        span = SpanContext(trace_id, span_id, True, TraceFlags(int(flags, 16)), state)
        context = trace.set_span_in_context(NonRecordingSpan(span), context)
    for key, _, value in members:
        context = baggage.set_baggage(key, value, context)
    return context


def _plain_members(header: str) -> list[tuple[str, str, str]] | None:
    """The members of a short, plain ``baggage`` header (``_PLAIN_BAGGAGE``) naming at most one
    tenant, partitioned at their ``=``; None for any other header."""
    if len(header) > _SHORT or _PLAIN_BAGGAGE.fullmatch(header) is None:
        return None
    members = [member.partition("=") for member in header.split(",")]
    if TENANT_BAGGAGE_KEY in header and len({v for k, _, v in members if k == TENANT_BAGGAGE_KEY}) > 1:
        return None  # conflicting tenants: ``_extract`` counts them
    return members


def _fits(value: str | bytes) -> bool:
    """Whether a header is within the W3C limit of 8,192 bytes (text as UTF-8: a header of fewer
    characters may be over it, and is ignored whole, not read as malformed)."""
    return len(value) <= MAX_HEADER_LENGTH and (
        isinstance(value, bytes) or value.isascii()
        or len(value.encode("utf-8", "surrogatepass")) <= MAX_HEADER_LENGTH)


def _too_long(key: str) -> bool:
    """A header over the W3C limit (8,192 bytes) is ignored (False); an ignored ``baggage`` one drops
    the caller's tenant with it, so it is counted (``propagation_baggage_too_long``) and said once,
    without quoting it."""
    if key == "baggage":
        count("propagation_baggage_too_long")
        log_once("propagation_baggage_too_long", "autotrace: a baggage header over %d bytes was ignored, with any "
                 "tenant in it (counted as propagation_baggage_too_long)", MAX_HEADER_LENGTH)
    return False


def _extract(carrier: Mapping[str, str] | Iterable[tuple[str, Any]], context: Context) -> Context:
    """One reading for both kinds of carrier: a mapping's items are pairs like metadata's, so a
    mapping holding ``Traceparent`` and ``traceparent`` has two, as W3C counts headers."""
    items = carrier.items() if isinstance(carrier, Mapping) else carrier
    entries = [(str(k).lower(), v) for k, v in items if isinstance(v, str | bytes)]
    pairs = [(k, v) for k, v in entries if _fits(v) or _too_long(k)]
    given = [v for k, v in entries if k == "traceparent"]
    # W3C trace context: a request with several traceparent headers has no valid one (a new trace
    # starts); over HTTP, repeated headers arrive joined by commas
    if len(given) > 1 or (given and ("," if isinstance(given[0], str) else b",") in given[0]):
        count("propagation_duplicate_traceparent")
    elif given:
        context = _joined(_tracecontext.extract(pairs, context, getter=PAIRS_GETTER))
    return without_conflicting_tenants(_with_baggage(pairs, context), [v for k, v in pairs if k == "baggage"])


def _joined(context: Context) -> Context:
    """``context``, extracted from a request that sent one ``traceparent``: when no parent came of
    it (malformed, upper-case hex, an all-zero id, version ``ff``, over-long), the request starts
    a new trace, as W3C trace context says; that is counted (``propagation_invalid_traceparent``)
    and said once, without quoting the header."""
    if not trace.get_current_span(context).get_span_context().is_valid:
        count("propagation_invalid_traceparent")
        log_once("propagation_invalid_traceparent", "autotrace: an invalid traceparent header was ignored and a "
                 "new trace started (counted as propagation_invalid_traceparent; the header is not logged)")
    return context


def _as_w3c_reads(header: str) -> str:
    """A ``baggage`` header rewritten so that OTel Python's propagator reads it as W3C baggage
    readers do. Without its members' properties (``key=value;property``): OTel Python keeps them
    as part of the value, so a tenant sent with one (``autotrace.tenant=acme;ttl=5``, as otel-go
    can) was no tenant, and another entry was forwarded with a different value. With a ``+`` in a
    value as ``%2B``: it is a plus sign (otel-go writes one as is), which OTel Python's form
    decoding made a space. Done on the raw text, where a ``;`` or ``,`` inside a value is still
    percent-encoded (``context.conflicting_tenants`` reads values so too). A header that the
    ``%2B`` would take past the W3C limit, where the propagator ignores all of it, is read with
    ``+`` as a space, as before (a tenant id holds neither)."""
    if ";" not in header and "+" not in header:
        return header
    members = [member.split(";", 1)[0].partition("=") for member in header.split(",")]
    plus = ",".join(key + sep + value.replace("+", "%2B") for key, sep, value in members)
    return plus if len(plus) <= MAX_HEADER_LENGTH else ",".join("".join(member) for member in members)


def without_conflicting_tenants(context: Context, baggage_headers: Iterable[str | bytes]) -> Context:
    """``context``, without its tenant entry if the incoming ``baggage`` headers named several
    tenants (counted as ``propagation_conflicting_tenant``): no tenant, rather than whichever came last."""
    if not conflicting_tenants(baggage_headers):
        return context
    count("propagation_conflicting_tenant")
    log_once("propagation_conflicting_tenant", "autotrace: incoming baggage named several tenants; none is "
             "used (counted as propagation_conflicting_tenant)")
    return without_tenant_baggage(context)


def _with_baggage(pairs: Iterable[tuple[Any, Any]], context: Context) -> Context:
    """``context`` plus the entries of every ``baggage`` pair, in order: several baggage headers
    are one list (W3C baggage, RFC 7230), so a later entry for a key wins, as within one header.
    Each header is held to the W3C limits; a malformed or oversized one is ignored."""
    for key, value in pairs:
        if not (isinstance(key, str) and key.lower() == "baggage" and isinstance(value, str | bytes)
                and (_fits(value) or _too_long("baggage"))):
            continue
        try:
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            context = _baggage.extract([("baggage", _as_w3c_reads(text))], context, getter=PAIRS_GETTER)
        except Exception:
            count("propagation_invalid_headers")
    return context


def merge_baggage(carrier: Iterable[tuple[str, Any]], context: Context | None = None) -> Context:
    """``context`` (default: the current one) plus the entries of every ``baggage`` pair in
    ``carrier``, so an outgoing call can keep baggage its caller gave explicitly; malformed or
    oversized values are ignored."""
    with reading_headers():
        return _with_baggage(carrier, context if context is not None else get_current())
