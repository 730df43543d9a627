"""What ``observe`` needs to know of the callable it decorates (its name, its kind of call, its
receiver), and the wrapper objects it returns for callables that are not plain functions."""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any

#: Descriptors that are not callable themselves, whose ``__get__`` gives the method to call.
_METHOD_DESCRIPTORS = functools.singledispatchmethod | functools.partialmethod


class Unbound:
    """The wrapper of a partial or callable instance, which a class holding it does not bind to its
    instances (a function would be: it has ``__get__``), as the wrapped object is not. It shows the
    wrapper function's code, defaults and annotations, so ``inspect`` still reads it as a function
    of its kind (``iscoroutinefunction``, ``isgeneratorfunction``...), and ``__wrapped__`` for its
    signature."""

    def __init__(self, wrapper: Callable[..., Any], driver: Callable[..., Any] | None = None) -> None:
        self.__dict__.update(wrapper.__dict__)  # ``functools.wraps``' copies: __wrapped__, __doc__...
        for name in ("__name__", "__qualname__", "__module__", "__doc__", "__code__", "__defaults__",
                     "__kwdefaults__", "__annotations__"):
            setattr(self, name, getattr(wrapper, name))
        if driver is not None:  # a generator kind's wrapper: read as what it returns runs
            self.__code__ = driver.__code__
        self._call = wrapper

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<observed {self.__wrapped__!r}>"


class Bindable(Unbound):
    """The wrapper of a generator or async generator function: a plain function (it calls the
    user's at once, see ``starter``), shown as one of its kind (``inspect.isgeneratorfunction``...:
    pytest fixtures, FastAPI dependencies and Starlette lifespans go by that), bound to an instance
    of a class holding it as a function is."""

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        return self if instance is None else types.MethodType(self, instance)

    def __reduce__(self) -> str:  # pickled (and copied) by name, as a function is
        return self.__qualname__


class Method:
    """``observe`` on a method descriptor that is not callable itself (``singledispatchmethod``,
    ``partialmethod``): the method it gives on each access is traced (``trace`` builds the wrapper,
    once per access); anything else is the descriptor's own (``register``, ``func``...)."""

    def __init__(self, descriptor: Any, trace: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        self.__wrapped__ = descriptor
        self._trace = trace

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        method = self.__wrapped__.__get__(instance, owner)
        return self._trace(method) if callable(method) else method

    def __set_name__(self, owner: type, name: str) -> None:
        set_name = getattr(self.__wrapped__, "__set_name__", None)
        if set_name is not None:
            set_name(owner, name)

    def __getattr__(self, name: str) -> Any:  # only for names not found on the wrapper itself
        if name == "__wrapped__":
            raise AttributeError(name)
        return getattr(self.__wrapped__, name)

    def __repr__(self) -> str:
        return f"<observed {self.__wrapped__!r}>"


def method_descriptor(fn: Any) -> bool:
    """Whether ``fn`` is a method descriptor that ``Method`` traces."""
    return isinstance(fn, _METHOD_DESCRIPTORS)


def callable_name(fn: Any, attribute: str) -> str | None:
    """``fn``'s ``__qualname__`` or ``__name__``; a ``functools.partial``, a property or a method
    descriptor has none: its function's (a property's getter); a callable object has none: its
    class's. None past 64 wrappers (one that wraps itself, say)."""
    for _ in range(64):
        if isinstance(fn, functools.partial | functools.cached_property | _METHOD_DESCRIPTORS):
            fn = fn.func  # type: ignore[union-attr]
        elif isinstance(fn, property) and fn.fget is not None:
            fn = fn.fget
        else:
            name = getattr(fn, attribute, None)
            return name if name is not None or not callable(fn) else getattr(type(fn), attribute, None)
    return None


def receiver(signature: inspect.Signature | None) -> str | None:
    """The first parameter when it is ``self`` or ``cls`` (a method's receiver), left out of the
    recorded input; a later parameter so named is an argument like any other."""
    first = next(iter(signature.parameters), None) if signature is not None else None
    return first if first in ("self", "cls") else None


def packed(signature: inspect.Signature | None) -> tuple[str, ...]:
    """The names of the ``*args`` and ``**kwargs`` parameters (those that hold other arguments)."""
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return tuple(name for name, parameter in (signature.parameters.items() if signature else ()) if parameter.kind in kinds)


def call_target(fn: Callable[..., Any]) -> Callable[..., Any]:
    """What decides the kind of call ``fn`` makes: ``fn`` itself, or for an object with ``__call__``
    (not a function, method or partial, which ``inspect`` reads directly) that method: an object
    whose ``__call__`` is a coroutine function returns a coroutine, whose run is the observation."""
    if inspect.isroutine(fn) or isinstance(fn, functools.partial | type) or not callable(fn):
        return fn
    return type(fn).__call__  # type: ignore[no-any-return, operator]


def iterable_coroutine(fn: Any) -> bool:
    """Whether ``fn`` is a generator-based coroutine function (``@types.coroutine``) or gives such a
    coroutine: a generator that is awaited, not iterated, so its observation is a coroutine's."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    code = getattr(fn, "gi_code", None) or getattr(getattr(fn, "__func__", fn), "__code__", None)
    return isinstance(code, types.CodeType) and bool(code.co_flags & inspect.CO_ITERABLE_COROUTINE)
