"""Wrapping a method family of a base class and of every subclass, including those defined later,
from when the application first imports the base's module (never before: importing a framework's
module at ``install()`` would add its import time to every start-up).

LangChain's vector stores and embedding models send no callbacks; each integration of them is one
``ClassFamilyPatches`` with its methods and its kind of ``FamilyCall``, one per call.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from .._internal import guarded_failure
from ..install import when_imported
from ..observation import CurrentDuring, Observation
from .base import Patcher


class FamilyCall(CurrentDuring):
    """One call of a wrapped method: the observation ``start`` gives (None: the call is not
    recorded) is current while the method runs; then the fields ``result_fields`` reads from its
    result are recorded, or its error, and it ends. A failure of either is autotrace's (counted
    under ``failure``, logged once): the call goes on as it would untraced."""

    __slots__ = ()
    failure = "class_family.call"

    def __init__(self, instance: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__(None)
        try:
            self.obs = self.start(instance, method, args, kwargs)
        except Exception as exc:
            guarded_failure(self.failure, exc)
            self.obs = None

    def start(self, instance: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Observation | None:
        """The call's observation, started (None: not recorded)."""
        return None

    def result_fields(self, result: Any) -> dict[str, Any]:
        """The fields recorded from the call's result."""
        return {}

    def finished(self, result: Any) -> None:
        obs = self.obs
        if obs is None:
            return
        try:
            obs.update(**self.result_fields(result))
        except Exception as exc:
            guarded_failure(self.failure, exc)
        obs.end()

    def exited(self, error: BaseException | None) -> None:
        if error is not None and self.obs is not None:
            self.obs.record_error(error)
            self.obs.end()


def _call(kind: type[FamilyCall], method: str, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    call = kind(instance, method, args, kwargs)
    with call:
        result = wrapped(*args, **kwargs)
    call.finished(result)
    return result


async def _acall(kind: type[FamilyCall], method: str, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    call = kind(instance, method, args, kwargs)
    with call:
        result = await wrapped(*args, **kwargs)
    call.finished(result)
    return result


class ClassFamilyPatches:
    """Wraps ``methods`` (sync) and ``async_methods`` (coroutine functions) where ``base`` (found in
    ``module``) or any subclass defines them: each call is a ``call`` (a ``FamilyCall``), given the
    method's name as the class defines it (its function may be named otherwise: an alias, a lambda
    given to ``type()``, a decorator without ``functools.wraps``). A subclass defined later is
    wrapped as it is defined. A method that is abstract, or whose kind does not match its name (an
    ``a…`` method returning an awaitable itself), is left as it is."""

    def __init__(self, patcher: Patcher, module: str, base: str, methods: tuple[str, ...],
                 async_methods: tuple[str, ...], call: type[FamilyCall], failure: str) -> None:
        self.patcher = patcher
        self.module, self.base_name, self.failure = module, base, failure
        self.kinds = {**dict.fromkeys(methods, False), **dict.fromkeys(async_methods, True)}
        self.call = call
        self.base: Any = None
        #: Between ``apply`` and ``remove``: the import hook wraps the family only then.
        self.applied = False

    def apply(self) -> None:
        """Wrap the family when its module is imported (at once, if it already is)."""
        self.applied = True
        when_imported(self, self.module, self.imported, lambda: self.applied)

    def imported(self, module: Any) -> None:
        if self.applied and self.base is None:
            try:
                self._wrap_family(getattr(module, self.base_name))
            except Exception as exc:  # a changed library: the rest stays traced
                guarded_failure(self.failure, exc)

    def _wrap_family(self, base: Any) -> None:
        self.base = base
        pending, seen = [base], set()
        while pending:
            cls = pending.pop()
            if cls in seen:  # reached again through another base (multiple inheritance)
                continue
            seen.add(cls)
            self.wrap(cls)
            pending.extend(cls.__subclasses__())
        patches = self

        def init_subclass(cls: Any, **kwargs: Any) -> None:
            super(base, cls).__init_subclass__(**kwargs)
            patches.wrap(cls)

        base.__init_subclass__ = classmethod(init_subclass)

    def wrap(self, cls: type) -> None:
        """Wrap the methods ``cls`` defines itself (an inherited one is wrapped where it is defined)."""
        for name, asynchronous in self.kinds.items():
            method = cls.__dict__.get(name)
            if (not inspect.isfunction(method) or getattr(method, "__isabstractmethod__", False)
                    or inspect.iscoroutinefunction(method) != asynchronous):
                continue
            try:
                self.patcher.wrap_object(cls, name, functools.partial(_acall if asynchronous else _call, self.call, name))
            except Exception as exc:  # a class that refuses it (a slot, a frozen type): left untraced
                guarded_failure(self.failure, exc)

    def remove(self) -> None:
        """Stop wrapping classes as they are defined, or when the module is imported (the patcher
        restores the methods)."""
        self.applied = False
        if self.base is not None and "__init_subclass__" in self.base.__dict__:
            del self.base.__init_subclass__
        self.base = None
