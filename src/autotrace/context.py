"""Request-scoped context: the tenant and trace-level attributes, in contextvars, and the baggage
entry that carries the tenant across internal services."""

from __future__ import annotations

import functools
import inspect
import re
import weakref
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from typing import Any, TypeVar
from urllib.parse import unquote, unquote_plus

from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, get_current_span, set_span_in_context

from . import schema
from ._callables import Bindable, Unbound, call_target, iterable_coroutine
from ._internal import count, guarded_failure, log_once
from ._stepping import step_through, step_through_async
from .config import ENVIRONMENT_NAME  # the one rule for environment names (install() checks it too)
from .runtime import state

TENANT_BAGGAGE_KEY = "autotrace.tenant"
_F = TypeVar("_F", bound=Callable[..., Any])
_TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}")  # whole value (fullmatch)

_tenant: ContextVar[str | None] = ContextVar("autotrace_tenant", default=None)
_capture: ContextVar[bool | None] = ContextVar("autotrace_capture_content", default=None)
_trace_attrs: ContextVar[dict[str, Any] | None] = ContextVar("autotrace_trace_attrs", default=None)
#: Set for a request whose service could not name its tenant (``refuse_incoming_tenant``).
_refused: ContextVar[bool] = ContextVar("autotrace_incoming_tenant_refused", default=False)
#: The innermost open ``Scope`` block here (a ``_Block``: see ``Scope.open``).
_BLOCK: ContextVar[object] = ContextVar("autotrace_scope_block", default=None)


def valid_tenant(value: object) -> bool:
    """Tenant ids are 1-128 characters of letters, digits and ``._:@/-``, starting alphanumeric."""
    return isinstance(value, str) and _TENANT_PATTERN.fullmatch(value) is not None


def current_tenant() -> str | None:
    """The tenant set for the current request context, if any."""
    return _tenant.get()


def set_tenant(tenant_id: str | None) -> Token[str | None]:
    """Set the tenant for the rest of the current context; returns a token for ``reset_tenant``."""
    if tenant_id is not None and not valid_tenant(tenant_id):
        raise ValueError(f"invalid tenant id ({_why_invalid(tenant_id)}): use 1-128 characters of [A-Za-z0-9._:@/-], "
                         "the first a letter or digit")
    return _tenant.set(None if tenant_id is None else plain_tenant(tenant_id))


def plain_tenant(tenant_id: str) -> str:
    """A valid tenant id as a plain ``str`` of the characters validated: a ``str`` subclass (a
    ``(str, Enum)`` member, a class of the application's) may have a ``__str__`` of its own, which
    the baggage sent to other services and every other text made of it would carry instead
    (``T.ACME`` for ``acme``: another tenant there)."""
    return tenant_id if type(tenant_id) is str else str.__str__(tenant_id)


def _why_invalid(value: object) -> str:
    """What is wrong with a tenant id, never quoting it: a value given by mistake (an e-mail
    address, a header) may be personal or a secret, and of any length."""
    if not isinstance(value, str):
        return f"not a str but {type(value).__name__}"
    if not 0 < len(value) <= 128:
        return f"{len(value)} characters"
    at = next((i for i, ch in enumerate(value) if not _TENANT_PATTERN.fullmatch(value[0] + ch if i else ch)), 0)
    return f"character {at + 1} of {len(value)}, {value[at]!r}, is not allowed there"


def reset_tenant(token: Token[str | None]) -> None:
    """Restore the tenant that was current before ``set_tenant``."""
    _tenant.reset(token)


def release_tenant(token: Token[Any] | None) -> None:
    """``reset_tenant`` (or the undoing of ``refuse_incoming_tenant``) for a call that may end in
    another context than it started in (a stream finished by another task or thread): there, the
    other context's tenant is left as it is."""
    if token is not None:
        try:
            token.var.reset(token)
        except ValueError:  # made in another context
            pass


def refuse_incoming_tenant() -> Token[bool]:
    """For the request in scope, whose service's own tenant function failed (raised, or answered
    no tenant id): no caller's tenant stands in for the one it could not name, wherever a caller's
    baggage is read later (an MCP server's ``_meta``: ``trusted_incoming_tenant``). Undone with
    ``release_tenant``."""
    return _refused.set(True)


class Scope(AbstractContextManager[Any]):
    """A ``with`` block of request context (``tenant``, ``trace_attributes``, ``content_capture``)
    that also decorates a function of any kind, with a fresh block per call: around the whole body
    of a coroutine function, and around each step of a generator or async generator (each
    ``next``/``send``/``throw``/``close``), so the body runs in scope whenever it is resumed and
    the code iterating it, between steps, does not. The function stays of its kind for
    ``inspect`` (``iscoroutinefunction``, ``isgeneratorfunction``...). Subclasses keep
    what they set in ``value`` (computed once): ``enter`` sets it, returning what ``leave`` undoes.
    One object may be entered in several blocks at once (kept as ``SYSTEM = tenant("system")``,
    entered by concurrent tasks or threads, or within its own block): each block's exit undoes
    its own entry, the one made in its context (``_BLOCK``)."""

    __slots__ = ("open", "value")
    gives_value = False  # ``with ... as x``: x is ``value``, else None

    def __init__(self, value: Any) -> None:
        self.value = value
        #: The open blocks (by ``id``), held weakly: the context each was entered in holds it
        #: (``_BLOCK``), so a block left in another context (it cannot be told which) is forgotten
        #: with that context, never kept for good by a long-lived scope (``SYSTEM``) such blocks enter.
        self.open = _Open()

    def enter(self) -> Any:
        raise NotImplementedError

    def leave(self, undo: Any) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        block = _Block(self, self.enter())
        block.token = _BLOCK.set(block)
        blocks, key = self.open, id(block)
        blocks[key] = weakref.ref(block, lambda _: blocks.forget(key))  # (an id is not reused before)
        return self.value if self.gives_value else None

    def __exit__(self, *exc_info: object) -> None:
        blocks, block = self.open, _BLOCK.get()
        if type(block) is _Block and block.scope is self and id(block) in blocks:
            try:
                _BLOCK.reset(block.token)
            except ValueError:  # a block entered in the context this one's is a copy of
                block = None
            else:
                blocks.pop(id(block), None)
        else:
            block = None
        if block is None:  # left in another context than it was entered in (a generator resumed
            try:  # elsewhere): the one block open, else it cannot be told from the others, whose
                # undoing stays theirs; nor from a block forgotten with its context (``lost``)
                block = blocks.popitem()[1]() if len(blocks) == 1 and blocks.lost <= 0 else None
            except KeyError:  # (another thread's block has just ended)
                block = None
            if block is None and blocks.lost > 0:  # taken as the exit of one such block
                blocks.lost -= 1
            if block is None:
                count("context_not_restored")
                return
        self.leave(block.undo)  # (in another context: counted there, as not restored)

    def __call__(self, fn: _F) -> _F:  # the function's own signature, for type checkers
        return scoped(fn, lambda: type(self)(self.value))  # type: ignore[no-any-return]


class _Open(dict[int, "weakref.ref[_Block]"]):
    """A scope's open blocks (``Scope.open``), and how many were forgotten with the context they
    were entered in while open (``lost``): the exit of such a block may yet come, in another context
    (a generator's first step run in a copy of the context, its next in another), where it must not
    be taken for the exit of the one block still open, another context's, whose tenant it left."""

    lost = 0  # (set on the instance at the first: no ``__init__`` for the many scopes that lose none)

    def forget(self, key: int) -> None:
        """The weakref callback of the block ``key``: its context is gone."""
        if self.pop(key, None) is not None:
            self.lost += 1


class _Block:
    """One open block of a ``Scope``: its scope, what undoes it, and the ``_BLOCK`` token it set."""

    __slots__ = ("__weakref__", "scope", "token", "undo")

    def __init__(self, scope: Scope, undo: Any) -> None:
        self.scope, self.undo = scope, undo
        self.token: Token[object] | None = None


def scoped(fn: Callable[..., Any], open_block: Callable[[], AbstractContextManager[Any]]) -> Any:
    """``fn`` run in a block of ``open_block`` at each call (see ``Scope``)."""
    kind = call_target(fn)
    driver: Any = None
    if inspect.iscoroutinefunction(kind) or iterable_coroutine(kind):
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            with open_block():
                return await fn(*args, **kwargs)
    elif inspect.isasyncgenfunction(kind) or inspect.isgeneratorfunction(kind):
        driver = step_through_async if inspect.isasyncgenfunction(kind) else step_through

        def wrapper(*args: Any, **kwargs: Any) -> Any:  # called at once: wrong arguments raise here
            return driver(fn(*args, **kwargs), lambda: (open_block(), None))  # one block, each step in it
    else:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with open_block():
                return fn(*args, **kwargs)
    wrapped = functools.wraps(fn)(wrapper)
    if not hasattr(type(fn), "__get__"):  # a partial or callable instance: not bound by a class holding it
        return Unbound(wrapped, driver)
    return wrapped if driver is None else Bindable(wrapped, driver)


class _Tenant(Scope):
    __slots__ = ()
    gives_value = True

    def enter(self) -> Any:
        previous = _tenant.get()
        token = set_tenant(self.value)
        return token, leave_other_tenants_trace(self.value, previous)

    def leave(self, undo: Any) -> None:
        token, left = undo
        if left is not None:
            back_in_trace(left)
        reset_block(token)


def tenant(tenant_id: str) -> Scope:
    """Run the block (or decorated function: see ``Scope``) on behalf of ``tenant_id``: every span
    started inside belongs to that tenant.

    Entered where a span of another tenant's trace is current (a worker task that one request
    started, serving every tenant's jobs), the block starts a trace of its own, without that
    trace's attributes: a span under the other tenant's would go to that tenant's project. So
    too under another tenant's scope with no span of autotrace's current (a worker task started
    before the request's first span, an incoming caller's span, one the sampler left out)."""
    return _Tenant(tenant_id)


Left = tuple[object, Token[dict[str, Any] | None]]


def leave_other_tenants_trace(tenant_id: str | None, previous: str | None = None,
                              span_in_previous: bool = True) -> Left | None:
    """No current span, nor trace attributes, when the current span is of another tenant than
    ``tenant_id`` (None: of any tenant), or has no tenant of autotrace's (none, a caller's, an
    unsampled one) while ``previous`` (the tenant in scope before) is another; a span left is counted as
    ``tenant_new_trace``. None when neither holds. ``span_in_previous`` False: a span of no
    tenant's was made current after ``previous``'s scope (a caller's, by the middleware; the scope
    is where the server started), so only that scope's trace attributes are left."""
    span = get_current_span()
    owner = getattr(span, "_autotrace_tenant", None)  # set when the span started
    other = owner if owner is not None else previous
    if other is None or other == tenant_id:
        return None
    if owner is None and not span_in_previous:
        return None, _trace_attrs.set(None)
    try:
        attached = otel_context.attach(set_span_in_context(INVALID_SPAN))
    except Exception as exc:  # a custom OTel runtime context failed: the tracker keeps the trace's tenant
        guarded_failure("tenant", exc)
        return None
    if span.get_span_context().is_valid:
        count("tenant_new_trace")
    return attached, _trace_attrs.set(None)


def of_other_tenant(span: object, tenant_id: str | None = None) -> bool:
    """Whether ``span`` started in another tenant than ``tenant_id`` (default: the one in scope);
    False where either has none."""
    owner = getattr(span, "_autotrace_tenant", None)  # set when the span started
    if tenant_id is None:
        tenant_id = _tenant.get()
    return owner is not None and tenant_id is not None and owner != tenant_id


def left_trace_of(span: object) -> bool:
    """Whether a run under ``span`` starts a trace of its own: ``span`` is another tenant's, and a
    ``tenant()`` block has left its trace (no span of another tenant is current). For integrations
    that parent a run by their own run ids (LangChain, LlamaIndex), not by the current span."""
    return of_other_tenant(span) and not of_other_tenant(get_current_span())


def back_in_trace(left: Left) -> None:
    """Undo ``leave_other_tenants_trace``: the trace attributes and current span it left, back."""
    from .observation import restore_context  # (it imports this module)

    attached, attrs = left
    reset_block(attrs)
    restore_context(attached)


def reset_block(token: Token[Any]) -> None:
    """Put back the value a block's ``token`` replaced (never raises). A block left in another
    context than it was entered in (a generator stepped in a thread pool, each step in a copy of
    the request's context, or closed by another task) cannot: ``reset`` would raise into the
    application at the block's end. Counted instead (``context_not_restored``): the context the
    block was entered in keeps the value, the one it is left in keeps its own. Observations'
    blocks end so too (``observation.restore_context``)."""
    try:
        token.var.reset(token)
    except (RuntimeError, ValueError):
        count("context_not_restored")


class _TraceAttributes(Scope):
    __slots__ = ()

    def enter(self) -> Any:
        outer = _trace_attrs.get() or {}
        attrs = self.value
        tags, outer_tags = attrs.get(schema.TRACE_TAGS), outer.get(schema.TRACE_TAGS)
        if tags and outer_tags:  # a block's tags join the enclosing blocks' (as Langfuse's own nesting does)
            attrs = {**attrs, schema.TRACE_TAGS: list(dict.fromkeys([*outer_tags, *tags]))}
        span = get_current_span()
        if span.is_recording():
            span.set_attributes(attrs)
        return _trace_attrs.set({**outer, **attrs})

    def leave(self, undo: Any) -> None:
        reset_block(undo)


def trace_attributes(
    *,
    name: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    metadata: Mapping[str, Any] | None = None,
    release: str | None = None,
    environment: str | None = None,
) -> Scope:
    """Attach trace-level fields (name, user, session, tags, metadata) to the current span and to
    every span started inside the block (or decorated function: see ``Scope``); Langfuse
    aggregates only over spans that carry them. Inside another such block, its tags join the
    enclosing block's and its metadata keys join theirs; other fields replace theirs.

    ``tags`` given as one string is one tag. An ``environment`` Langfuse would reject is left out,
    counted as ``trace_attributes_invalid`` (never raised: the block runs as it would untraced)."""
    if isinstance(tags, str):  # not its characters, one tag each
        tags = [tags]
    return _TraceAttributes(schema.trace_attributes(
        name=name, user_id=user_id, session_id=session_id, tags=tags, metadata=metadata,
        release=release, environment=_environment(environment),
    ))


def _environment(value: object) -> str | None:
    """``value`` as Langfuse takes an environment (lower-cased, then ``^(?!langfuse)[a-z0-9_-]+$``, at
    most 40 characters), or None. Langfuse answers 400 to an export holding any other, so one such
    span would lose every span sent with it, other requests' and other traces' included."""
    if value is None:
        return None
    name = value.lower() if isinstance(value, str) else None
    if name is not None and ENVIRONMENT_NAME.match(name):
        return name
    count("trace_attributes_invalid")
    log_once("trace_environment_invalid", "autotrace: trace_attributes(environment=...) must match "
             "^(?!langfuse)[a-z0-9_-]+$ (at most 40 characters); left out (counted as trace_attributes_invalid)")
    return None


def forget_inherited_scope() -> None:
    """Leave the tenant, trace attributes and content-capture switch of the current context unset:
    for a request handled in a context copied from the code that started its server (a
    ``grpc.aio`` server's calls inherit that of ``server.start()``), which must not run under
    that code's tenant. Sets only what is set (nearly always nothing)."""
    if _tenant.get() is not None:
        _tenant.set(None)
    if _trace_attrs.get() is not None:
        _trace_attrs.set(None)
    if _capture.get() is not None:
        _capture.set(None)


Held = tuple[Token[str | None], Token[dict[str, Any] | None]]


def hold_scope(tenant_id: str) -> Held:
    """``tenant_id`` in scope, without the trace attributes of the scope it replaces (another
    tenant's, or none's: not ``tenant_id``'s trace); undone by ``release_scope``."""
    return _tenant.set(tenant_id), _trace_attrs.set(None)


def release_scope(held: Held) -> None:
    """Undo ``hold_scope`` (never raises)."""
    reset_block(held[1])
    reset_block(held[0])


def current_trace_attributes() -> dict[str, Any] | None:
    """The trace-level attributes set by enclosing ``trace_attributes`` blocks."""
    return _trace_attrs.get()


def tenant_from_baggage(ctx: Context | None = None) -> str | None:
    """The tenant carried as baggage in ``ctx`` (validated), or None."""
    value = baggage.get_baggage(TENANT_BAGGAGE_KEY, ctx)
    return value if valid_tenant(value) else None


def trusted_incoming_tenant(ctx: Context) -> str | None:
    """The tenant a caller's baggage in ``ctx`` names, if the service trusts its callers
    (``trust_incoming_tenant``) and its own code has put no tenant in scope: a service's auth (an
    outer layer, a gRPC interceptor) wins over what a caller says, also when it failed
    (``refuse_incoming_tenant``). None otherwise."""
    settings = state.settings
    if settings is None or not settings.trust_incoming_tenant or _tenant.get() is not None or _refused.get():
        return None
    return tenant_from_baggage(ctx)


def conflicting_tenants(headers: Iterable[str | bytes]) -> bool:
    """Whether the ``baggage`` header values ``headers`` name more than one tenant: then none of
    them is trusted (the W3C rule that a later entry wins would let whoever adds a header choose).
    Keys and values are read as ``propagation.extract`` reads them (keys percent- and plus-decoded,
    values percent-decoded, a ``+`` being a plus sign; then stripped), so ``autotrace%2Etenant`` or
    ``autotrace.tenant+`` is the tenant key here too."""
    seen: set[str] = set()
    for header in headers:
        text = header.decode("latin-1") if isinstance(header, bytes) else header
        if TENANT_BAGGAGE_KEY not in text and "%" not in text and "+" not in text:
            continue  # nearly always: no key can decode to the tenant's
        for member in text.split(","):
            key, sep, value = member.split(";", 1)[0].partition("=")
            if sep and unquote_plus(key.strip(" \t")).strip() == TENANT_BAGGAGE_KEY:
                seen.add(unquote(value.strip(" \t")).strip())
    return len(seen) > 1


def with_tenant_baggage(tenant_id: str | None, ctx: Context | None = None) -> Context | None:
    """A context carrying ``tenant_id`` as baggage, for outgoing calls to internal services."""
    if tenant_id is None:
        return ctx
    return baggage.set_baggage(TENANT_BAGGAGE_KEY, tenant_id, ctx)


def without_tenant_baggage(ctx: Context | None = None) -> Context:
    """``ctx`` (default: the current context) without a tenant baggage entry: a tenant that
    arrived from a caller is never forwarded as is, only this service's own tenant is sent on."""
    return baggage.remove_baggage(TENANT_BAGGAGE_KEY, ctx)


def capture_enabled() -> bool:
    """Whether message content (inputs, outputs, documents, tool arguments) is recorded here."""
    override = _capture.get()
    if override is not None:
        return override
    return state.capture_content


class _ContentCapture(Scope):
    __slots__ = ()

    def enter(self) -> Any:
        return _capture.set(self.value)

    def leave(self, undo: Any) -> None:
        reset_block(undo)


def content_capture(enabled: bool) -> Scope:
    """Switch content capture on or off for the calls made inside the block (or decorated
    function: see ``Scope``)."""
    return _ContentCapture(bool(enabled))
