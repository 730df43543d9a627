"""What the server interceptor reads of a method handler to wrap its behaviors (``_server._wrap_handler``),
worked out once per handler: grpc hands the same handler for every call of a method."""

from __future__ import annotations

import inspect
from collections import namedtuple
from collections.abc import Callable
from typing import Any

import grpc

from ._serializer import as_is

BEHAVIORS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
#: Read by grpc's sync server on the behavior it is given: copied onto the wrapper.
_OPTIONS = ("experimental_non_blocking", "experimental_thread_pool")
ASYNC_GENERATOR, COROUTINE, FUNCTION = "async generator", "coroutine", "function"


class MethodHandler(namedtuple("MethodHandler", ("request_streaming", "response_streaming", "request_deserializer",
                                                  "response_serializer", *BEHAVIORS)), grpc.RpcMethodHandler):
    """A handler given as another type than grpc's named tuple (``grpc.RpcMethodHandler`` is an
    interface), copied so that its behaviour can be wrapped."""


def _kind(behavior: Callable[..., Any]) -> str:
    if inspect.isasyncgenfunction(behavior):
        return ASYNC_GENERATOR
    return COROUTINE if inspect.iscoroutinefunction(behavior) else FUNCTION


class Plan:
    """A handler's response serializer and, per behavior it has, (field, behavior, whether its
    responses stream, its kind, its options); ``index``: a named tuple's field positions."""

    __slots__ = ("behaviors", "index", "serialize")

    def __init__(self, handler: Any) -> None:
        self.serialize: Callable[[Any], Any] = getattr(handler, "response_serializer", None) or as_is
        self.behaviors = tuple(
            (field, behavior, field.endswith("stream"), _kind(behavior),
             tuple((option, getattr(behavior, option)) for option in _OPTIONS if hasattr(behavior, option)))
            for field in BEHAVIORS if (behavior := getattr(handler, field, None)) is not None)
        fields = getattr(type(handler), "_fields", None)
        self.index = ({field: at for at, field in enumerate(fields)}
                      if isinstance(handler, tuple) and hasattr(type(handler), "_make") and type(fields) is tuple
                      else None)

    def rebuilt(self, handler: Any, changes: dict[str, Any]) -> Any:
        """``handler._replace(**changes)``: for a named tuple, without looking up its fields again."""
        index = self.index
        if index is None:
            return handler._replace(**changes)
        values = list(handler)
        try:
            for field, value in changes.items():
                values[index[field]] = value
        except KeyError:  # not one of its fields: as ``_replace`` says
            return handler._replace(**changes)
        return type(handler)._make(values)


#: Plans of the handlers seen last, by ``id``, each held with its (immutable) named tuple so that
#: the id stays its own. Bounded: an application may make a new handler per call.
_PLANS: dict[int, tuple[Any, Plan]] = {}
_MAX_PLANS = 256


def plan_of(handler: Any) -> Plan:
    """The handler's plan; one that is not a tuple (of another type, whose fields may change) is read anew."""
    if not isinstance(handler, tuple):
        return Plan(handler)
    held = _PLANS.get(id(handler))
    if held is not None and held[0] is handler:
        return held[1]
    plan = Plan(handler)
    if len(_PLANS) >= _MAX_PLANS:  # (the plans of a server's methods are back after one call each)
        _PLANS.clear()
    _PLANS[id(handler)] = (handler, plan)
    return plan
