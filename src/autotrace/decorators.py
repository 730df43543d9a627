"""The ``observe`` and ``traced_tool`` decorators: one observation per call of a function,
coroutine, generator or async generator (a generator's observation lasts while it is read)."""

from __future__ import annotations

import functools
import inspect
import types
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, overload

from opentelemetry.trace import Span, get_current_span

from . import bounds, observation, recorder
from ._callables import Bindable as _Bindable
from ._callables import Method as _Method
from ._callables import Unbound as _Unbound
from ._callables import call_target as _call_target
from ._callables import callable_name as _callable_name
from ._callables import iterable_coroutine as _iterable_coroutine
from ._callables import method_descriptor as _method_descriptor
from ._callables import packed as _packed
from ._callables import receiver as _receiver
from ._internal import guarded_failure
from ._snapshots import FEW_ITEMS as _FEW_ITEMS
from ._snapshots import snapshot_argument as _argument
from ._stepping import Steps, end_unrun, step_through, step_through_async, unstarted
from ._stream_items import PLAIN_ITEMS as _PLAIN_ITEMS
from ._stream_items import held as _held
from ._stream_items import stream_output as _stream_output
from .context import Held, capture_enabled, release_scope
from .interception import ReplayStop
from .observation import CurrentDuring, Observation, ObservationType, make_current, restore_context
from .runtime import state
from .scores import evaluated_tenant, evaluation_scope, evaluation_target, score_evaluation, start_evaluation

__all__ = ["observe", "span_name", "traced_tool"]

F = TypeVar("F", bound=Callable[..., Any])
_MAX_STREAM_ITEMS = 1000
#: What a plain function may return whose work runs later (one set lookup per call decides).
_LAZY_RESULTS = frozenset({types.CoroutineType, types.GeneratorType, types.AsyncGeneratorType})
#: Metadata of a plain function's observation that followed what it returned: the kind of object.
_RETURNS = "autotrace.returns"
#: The metadata of a call whose return value was not recorded: a replay then stops there (never returns None).
_NOT_CAPTURED = {observation.OUTPUT_CAPTURED: False}
#: Methods of a ``functools.lru_cache`` / ``cache`` wrapper, kept on ours when it traces one.
_CACHE_METHODS = ("cache_info", "cache_clear", "cache_parameters")


@overload
def observe(func: F) -> F: ...
@overload
def observe(
    func: str | ObservationType | None = None, *, name: str | None = None, as_type: ObservationType | str = ...,
    capture_input: bool = ..., capture_output: bool = ..., **fields: Any,
) -> Callable[[F], F]: ...
def observe(
    func: F | str | ObservationType | None = None,
    *,
    name: str | None = None,
    as_type: ObservationType | str = ObservationType.SPAN,
    capture_input: bool = True,
    capture_output: bool = True,
    **fields: Any,
) -> F | Callable[[F], F]:
    """Trace every call of a function, coroutine, generator or async generator as an observation.

    Arguments become the input and the return value (or the yielded items) the output. Exceptions
    mark the observation ERROR and propagate unchanged. Extra keyword arguments are recorded as
    typed fields (e.g. ``model=`` for a generation). A string in place of the function is the
    name (``@observe("retrieve")``), as ``name=`` is; an ``ObservationType`` there is ``as_type``.
    """
    if isinstance(func, ObservationType):  # the type, given in place of the function
        func, as_type = None, func
    elif isinstance(func, str):  # a name, not a function to wrap (which failed at decoration, the string called)
        func, name = None, func if name is None else name
    obs_type = ObservationType(as_type)

    def decorate(fn: F) -> F:
        if isinstance(fn, staticmethod | classmethod):  # on top of one: wrap its function, keep the kind
            return type(fn)(decorate(fn.__func__))  # type: ignore[return-value]
        # on top of a property: trace its getter (setter and deleter stay as they are), still a property
        if isinstance(fn, property):  # one without a getter (write-only) has nothing to trace
            return fn if fn.fget is None else fn.getter(decorate(fn.fget))  # type: ignore[return-value]
        if isinstance(fn, functools.cached_property):
            return functools.cached_property(decorate(fn.func))  # type: ignore[return-value]
        if _method_descriptor(fn):  # a ``singledispatchmethod``...: the method it gives, on each access
            return _Method(fn, observe(name=name or _callable_name(fn, "__qualname__"), as_type=obs_type,  # type: ignore[return-value]
                                       capture_input=capture_input, capture_output=capture_output, **fields))
        return _Traced(fn, span_name(name or _callable_name(fn, "__qualname__"), "observed"), obs_type,
                       capture_input, capture_output, fields).wrapper()  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate


@overload
def traced_tool(func: F) -> F: ...
@overload
def traced_tool(func: str | None = None, *, name: str | None = None, **fields: Any) -> Callable[[F], F]: ...
def traced_tool(func: F | str | None = None, *, name: str | None = None, **fields: Any) -> F | Callable[[F], F]:
    """Trace a function as a tool call: its arguments and result become the tool's. A string in
    place of the function is the tool's name (``@traced_tool("search")``), as ``name=`` is."""
    if isinstance(func, str):
        func, name = None, func if name is None else name

    def decorate(fn: F) -> F:
        tool_name = name or _callable_name(fn, "__name__") or "tool"
        return observe(name=tool_name, as_type=ObservationType.TOOL, **{"tool_name": tool_name, **fields})(fn)

    return decorate(func) if func is not None else decorate


class _Traced:
    """Builds the right wrapper for one decorated callable; all four kinds share these helpers."""

    def __init__(self, fn: Callable[..., Any], name: str, obs_type: ObservationType, capture_input: bool,
                 capture_output: bool, fields: dict[str, Any]) -> None:
        self.fn = fn
        self.name = name
        self.obs_type = obs_type
        self.capture_input = capture_input
        self.capture_output = capture_output
        self.fields = fields
        try:
            self.signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):
            self.signature = None
        self.receiver = _receiver(self.signature)
        self.packed = _packed(self.signature)
        self.evaluator = obs_type is ObservationType.EVALUATOR

    # -- shared steps, each of which never raises ---------------------------------------------------
    def begin(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Observation | None:
        """The call's observation, None if it cannot be started; one started whose fields cannot be
        recorded is still given back, to be ended with the call (never left open)."""
        obs: Observation | None = None
        try:
            target = evaluation_target(args, kwargs) if self.evaluator else None
            if target is None:
                obs = recorder.start(self.obs_type, self.name)
            else:  # an evaluator's: of another tenant's work, that tenant's
                obs = start_evaluation(self.obs_type, self.name, target)
            if self.fields:
                obs.update(**self.fields)
            if self.capture_input and capture_enabled():
                obs.set_input(self.bind(args, kwargs))
            return obs
        except Exception as exc:
            guarded_failure("observe.begin", exc)
        return obs

    @staticmethod
    def evaluator_scope(obs: Observation) -> Held | None:
        """For an evaluator of another tenant's work, that tenant in scope while its body runs,
        without the caller's trace attributes: the calls it makes carry it to the services they
        reach, as its spans go to it. None otherwise (nothing set)."""
        try:
            return evaluation_scope(evaluated_tenant(obs))
        except Exception as exc:
            guarded_failure("observe.begin", exc)
            return None

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The call's input: its arguments by name, each list or dict argument copied (serialised
        only at the end, it would otherwise show what the call did to it: an agent's ``messages``
        with the reply it appended)."""
        bound = None
        if self.signature is not None:
            try:
                bound = self.signature.bind(*args, **kwargs)
                bound.apply_defaults()
            except TypeError:  # wrong arguments: the call says so
                bound = None
        if bound is None:
            return {"args": [_argument(value) for value in args], "kwargs": {k: _argument(v) for k, v in kwargs.items()}}
        values = dict(bound.arguments)
        if self.receiver is not None:
            values.pop(self.receiver, None)
        for key, value in values.items():  # ``_argument`` inlined: a call per argument costs more than it does
            kind = type(value)
            if kind is list or kind is dict:
                values[key] = kind(value) if len(value) <= _FEW_ITEMS else _argument(value)
        for key in self.packed:  # ``*args`` and ``**kwargs``: the arguments they hold
            value = values[key]
            values[key] = tuple([_argument(v) for v in value]) if type(value) is tuple else {
                k: _argument(v) for k, v in value.items()}
        return values

    def succeed(self, obs: Observation, output: Any, streamed: bool = False) -> None:
        """End ``obs`` with ``output``; one not recorded is said to be (``OUTPUT_CAPTURED``), not a stream's."""
        try:
            if self.capture_output and capture_enabled():
                obs.set_output(output)
            elif not streamed:
                obs.update(metadata=_NOT_CAPTURED)
        except Exception as exc:
            guarded_failure("observe.end", exc)
        obs.end()  # never raises: the span ends even if recording the output did not work
        try:
            if self.evaluator:
                score_evaluation(self.name, obs, output)
        except Exception as exc:
            guarded_failure("observe.end", exc)

    def replayed(self, obs: Observation) -> Any:
        """A frozen call during a replay: record and return the recorded output without running, or
        raise ``RecordedError`` (recorded as ERROR, with the recorded message) if the recording raised."""
        intercept = obs.intercept
        obs.update(metadata={"replay": "frozen"})
        error = intercept.error if intercept is not None else None
        if error is not None:
            self.fail(obs, error.status_message or error)
            raise error
        output = intercept.output if intercept is not None else None
        self.succeed(obs, output)
        return output

    def replayed_items(self, obs: Observation) -> list[Any]:
        """A frozen generator: its recorded items (recorded text is one item), else ``ReplayStop``
        when the recording does not hold them all (it raised, was cut, or content was not captured)."""
        output = obs.intercept.output if obs.intercept is not None else None
        if isinstance(output, str) and not bounds.was_cut(output):
            items = [output]
        elif isinstance(output, list) and len(output) < _MAX_STREAM_ITEMS and not bounds.was_cut(output):
            items = output
        else:
            self.fail(obs, "replay stopped: the recording does not hold the yielded items")
            raise ReplayStop(f"replay stopped: the recording of {self.name!r} does not hold the items it yielded")
        obs.update(metadata={"replay": "frozen"})
        self.succeed(obs, output)
        return items

    @staticmethod
    def fail(obs: Observation, error: BaseException | str) -> None:
        try:
            obs.record_error(error)
        except Exception as exc:
            guarded_failure("observe.end", exc)
        obs.end()  # never raises: the span ends even if recording the error did not work

    # -- wrappers -----------------------------------------------------------------------------------
    def wrapper(self) -> Callable[..., Any]:
        fn = self.fn
        kind = _call_target(fn)
        driver: Callable[..., Any] | None = None  # a generator kind's: what ``inspect`` reads it as
        if inspect.iscoroutinefunction(kind) or _iterable_coroutine(kind):  # ``@types.coroutine``'s too
            wrapped = self.coroutine_wrapper()
        elif inspect.isasyncgenfunction(kind):
            wrapped, driver = self.starter(self.drive_async), step_through_async
        elif inspect.isgeneratorfunction(kind):
            wrapped, driver = self.starter(self.drive), step_through
        else:
            wrapped = self.function_wrapper()
        wrapped = functools.wraps(fn)(wrapped)
        for attribute in _CACHE_METHODS:  # ``functools.cache``'s, which ``wraps`` does not copy: callers use them
            method = getattr(fn, attribute, None)
            if method is not None:
                setattr(wrapped, attribute, method)
        if not hasattr(type(fn), "__get__"):  # a partial or callable instance: not bound when a class holds it
            return _Unbound(wrapped, driver)
        return wrapped if driver is None else _Bindable(wrapped, driver)

    def function_wrapper(self) -> Callable[..., Any]:
        fn = self.fn

        def traced(*args: Any, **kwargs: Any) -> Any:
            obs = self.begin(args, kwargs)
            if obs is None:
                return fn(*args, **kwargs)
            if obs.intercept is not None and obs.intercept.frozen:
                return self.replayed_lazily(obs)
            held = self.evaluator_scope(obs) if self.evaluator else None
            token = make_current(obs)
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:
                _leave(token, held)
                self.fail(obs, error)
                raise
            _leave(token, held)
            if type(result) in _LAZY_RESULTS and unstarted(result):  # its work runs later: followed
                return self.follow(obs, result)
            self.succeed(obs, result)
            return result

        return traced

    def follow(self, obs: Observation, result: Any) -> Any:
        """A coroutine, generator or async generator returned by a plain function (one wrapped by a
        decorator of the application's, say): the same kind of object, which runs ``result`` with
        ``obs`` current and ends ``obs`` with its outcome, as if the function were of that kind.
        Never run, it ends ``obs`` when it is freed."""
        if isinstance(result, types.CoroutineType) or _iterable_coroutine(result):  # awaited, not iterated
            follower, kind = self.coroutine_wrapper((result, obs))(), "coroutine"
        elif isinstance(result, types.GeneratorType):
            follower, kind = self.drive(result, None, obs), "generator"
        else:
            follower, kind = self.drive_async(result, None, obs), "async_generator"
        try:  # a replay that freezes this call returns the same kind
            obs.update(metadata={_RETURNS: kind})
        except Exception as exc:  # the follower is returned all the same
            guarded_failure("observe.begin", exc)
        weakref.finalize(follower, end_unrun, result, obs).atexit = False
        return follower

    def replayed_lazily(self, obs: Observation) -> Any:
        """A frozen plain function: when its recording followed the coroutine or (async) generator
        it returned, the same kind of object, which gives the recorded outcome when run (a frozen
        coroutine raises the recorded error when awaited, as the recorded one did)."""
        record = obs.intercept.record if obs.intercept is not None else None
        kind = ((record or {}).get("metadata") or {}).get(_RETURNS)
        if kind == "coroutine":
            async def recorded() -> Any:
                return self.replayed(obs)
        elif kind == "generator":
            def recorded() -> Any:  # type: ignore[misc]
                yield from self.replayed_items(obs)
        elif kind == "async_generator":
            async def recorded() -> Any:  # type: ignore[misc]
                for item in self.replayed_items(obs):
                    yield item
        else:
            return self.replayed(obs)
        lazy = recorded()
        weakref.finalize(lazy, obs.end).atexit = False
        return lazy

    def coroutine_wrapper(self, follow: tuple[Any, Observation] | None = None) -> Callable[..., Any]:
        fn = self.fn

        async def traced(*args: Any, **kwargs: Any) -> Any:
            if follow is None:
                obs = self.begin(args, kwargs)
                if obs is None:
                    return await fn(*args, **kwargs)
                if obs.intercept is not None and obs.intercept.frozen:
                    return self.replayed(obs)
            else:
                obs = follow[1]
            held = self.evaluator_scope(obs) if self.evaluator else None
            token = make_current(obs)
            try:
                result = await (fn(*args, **kwargs) if follow is None else follow[0])
            except BaseException as error:
                _leave(token, held)
                self.fail(obs, error)
                raise
            _leave(token, held)
            self.succeed(obs, result)
            return result

        return traced

    def starter(self, drive: Callable[..., Any]) -> Callable[..., Any]:
        """The wrapper of a generator or async generator function: calls it at once, so wrong
        arguments raise at the call, as they do undecorated, and returns ``drive`` running what it
        returned (the observation starts at its first step, as the generator's work does)."""
        fn = self.fn

        def traced(*args: Any, **kwargs: Any) -> Any:
            return drive(fn(*args, **kwargs), (args, kwargs))

        return traced

    def drive(self, inner: Any, call: tuple[tuple[Any, ...], dict[str, Any]] | None,
              obs: Observation | None = None) -> Any:
        """Drive the user's generator ``inner`` step by step (``_stepping``), each step in its
        ``_Stream``. ``call``: the arguments it was called with, its observation begun at the first
        step; else ``obs``, already begun (see ``follow``)."""
        return step_through(inner, functools.partial(self.steps, call, obs))

    def drive_async(self, inner: Any, call: tuple[tuple[Any, ...], dict[str, Any]] | None,
                    obs: Observation | None = None) -> Any:
        """The async twin of ``drive``."""
        return step_through_async(inner, functools.partial(self.steps, call, obs))

    def steps(self, call: tuple[tuple[Any, ...], dict[str, Any]] | None, obs: Observation | None) -> Steps:
        """At a generator's first step: its observation begun (``call``) or given, and the stream its
        steps run in; a frozen one's recorded items instead."""
        if call is not None:
            obs = self.begin(*call)
            if obs is not None and obs.intercept is not None and obs.intercept.frozen:
                return self.replayed_items(obs)
        stream = _Stream(self, obs)
        return stream, stream.add


def _leave(token: object | None, held: Held | None) -> None:
    """Undo ``make_current`` and ``evaluator_scope`` (never raises)."""
    restore_context(token)
    if held is not None:
        release_scope(held)


class _Stream(CurrentDuring):
    """The bookkeeping of one traced (async) generator, shared by both wrappers.

    Each step of the user's generator runs inside ``with stream:``: the observation (or a block of
    the generator's left open at its last ``yield``) is current during the step only, and the
    step's outcome ends it exactly once (finished or closed: success with the items; closed early
    by its reader or cancelled: interrupted, with the items (WARNING); any other exception: error).
    Nothing here raises into the generator.
    """

    __slots__ = ("dropped", "ended", "held", "inside", "items", "room", "traced")

    def __init__(self, traced: _Traced, obs: Observation | None) -> None:
        super().__init__(obs)
        self.traced = traced
        self.held: Held | None = None  # an evaluator's scope, during a step (see evaluator_scope)
        # no output recorded: hold no yielded item (a stream of large chunks would stay in memory)
        self.items: list[Any] | None = [] if traced.capture_output and capture_enabled() else None
        #: What more the items held may take, counted as no more than their JSON text's length
        #: (a text's length, a quarter of another item's ``bounds.size``): once past the value
        #: size limit and the margin held for redaction, the output would be cut anyway.
        self.room = state.max_value_bytes + bounds.REDACTION_MARGIN
        self.dropped = 0  # items not held for lack of room
        self.ended = obs is None
        #: The span the generator left current at its last ``yield`` when not its observation's: a
        #: block of its own left open across it (``with start_span(...): yield``), current again
        #: when it resumes, as it is undecorated, so what it starts in that block nests there.
        self.inside: Span | None = None

    def __enter__(self) -> None:
        if self.obs is not None and self.traced.evaluator:
            self.held = self.traced.evaluator_scope(self.obs)
        if self.inside is None:
            super().__enter__()
        else:
            self.token = make_current(self.inside)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> None:
        if self.obs is not None:
            current = get_current_span()
            self.inside = None if current is self.obs.span else current
        held, self.held = self.held, None
        if held is not None:
            release_scope(held)
        super().__exit__(kind, error, traceback)

    def exited(self, error: BaseException | None) -> None:
        if error is None or self.ended or self.obs is None:
            return
        self.ended = True
        try:
            if isinstance(error, GeneratorExit):  # its reader stopped early: interrupted, with what it yielded
                self.obs.set_level("WARNING", observation.STREAM_CLOSED)
            if isinstance(error, StopIteration | StopAsyncIteration | GeneratorExit):
                self.traced.succeed(self.obs, _stream_output(self.items, self.dropped), streamed=True)
                return
            if not isinstance(error, Exception) and self.items is not None:  # interrupted (cancelled):
                self.obs.set_output(_stream_output(self.items, self.dropped))  # what it yielded, as if closed
            self.traced.fail(self.obs, error)
        except Exception as exc:
            guarded_failure("observe.end", exc)
            self.obs.end()

    def add(self, item: Any) -> None:
        """Hold ``item`` for the output (``_held``): the first ``_MAX_STREAM_ITEMS``, while there is
        ``room`` (a stream of large chunks is not held whole, only what its output can keep)."""
        items = self.items
        if items is None or self.ended or len(items) >= _MAX_STREAM_ITEMS:
            return
        if self.room <= 0:
            self.dropped += 1
            return
        kind = type(item)
        if kind is str:  # streamed text, the most common
            self.room -= len(item)
        elif kind in _PLAIN_ITEMS:  # (no call but ``size``'s)
            self.room -= bounds.size(item, 4 * self.room) // 4
            if kind is list or kind is dict:  # copied, as arguments are: the generator may change it later
                item = kind(item) if len(item) <= _FEW_ITEMS else _argument(item)  # (a status dict, say)
        else:
            item, self.room = _held(item, self.room)
        items.append(item)


def span_name(name: object, default: str) -> str:
    """``name`` as a span name, which must be a string: a span named otherwise would fail on its
    way out (redaction, export) and be dropped, its children left without their parent."""
    if isinstance(name, str):
        return name
    return default if name is None else str(name)
