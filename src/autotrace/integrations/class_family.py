"""Wrapping a method family of a base class and of every subclass, including those defined later,
from when the application first imports the base's module (never before: importing a framework's
module at ``install()`` would add its import time to every start-up).

LangChain's vector stores and embedding models send no callbacks; each integration of them is one
``ClassFamilyPatches`` with its methods and wrappers.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import wrapt

from .._internal import guarded_failure
from .base import Patcher


class ClassFamilyPatches:
    """Wraps ``methods`` (sync) and ``async_methods`` (coroutine functions) where ``base`` (found in
    ``module``) or any subclass defines them, with ``wrapper`` and ``async_wrapper``; a subclass
    defined later is wrapped as it is defined. A method that is abstract, or whose kind does not
    match its name (an ``a…`` method returning an awaitable itself), is left as it is.

    The wrappers take the method's name first (``wrapper(name, wrapped, instance, args, kwargs)``):
    the function defined there may be named otherwise (an alias, a lambda given to ``type()``, a
    decorator without ``functools.wraps``)."""

    def __init__(self, patcher: Patcher, module: str, base: str, methods: tuple[str, ...],
                 async_methods: tuple[str, ...], wrapper: Callable[..., Any], async_wrapper: Callable[..., Any],
                 failure: str) -> None:
        self.patcher = patcher
        self.module, self.base_name, self.failure = module, base, failure
        self.kinds = {**dict.fromkeys(methods, False), **dict.fromkeys(async_methods, True)}
        self.wrappers = {False: wrapper, True: async_wrapper}
        self.base: Any = None
        #: Moves on at each ``apply`` and ``remove``: an import hook of an earlier one does nothing.
        self.generation = 0

    def apply(self) -> None:
        """Wrap the family when its module is imported (at once, if it already is)."""
        self.generation += 1
        generation = self.generation

        def imported(module: Any) -> None:
            if self.generation == generation and self.base is None:
                try:
                    self._wrap_family(getattr(module, self.base_name))
                except Exception as exc:  # a changed library: the rest stays traced
                    guarded_failure(self.failure, exc)

        wrapt.register_post_import_hook(imported, self.module)

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
            wrapper = self.wrappers[asynchronous]
            try:
                self.patcher.wrap_object(cls, name, functools.partial(wrapper, name))
            except Exception as exc:  # a class that refuses it (a slot, a frozen type): left untraced
                guarded_failure(self.failure, exc)

    def remove(self) -> None:
        """Stop wrapping classes as they are defined, or when the module is imported (the patcher
        restores the methods)."""
        self.generation += 1
        if self.base is not None and "__init_subclass__" in self.base.__dict__:
            del self.base.__init_subclass__
        self.base = None
