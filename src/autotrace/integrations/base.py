"""The integration contract and the patching helper every integration shares.

An integration declares the distribution it instruments and the version range it supports,
patches on ``instrument()`` and restores every original on ``uninstrument()``. A patch target
that no longer exists, or whose parameters no longer are the ones its wrapper reads (a changed
library API), disables only that patch, with one warning.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import weakref
from collections.abc import Callable
from typing import Any

import wrapt
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from .._internal import count, log_once

#: The base of wrapt's proxies and function wrappers (``ObjectProxy`` before wrapt 2).
_PROXY: type = getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)


def _take_from_under(outer: Any, ours: Any, original: Any, depth: int = 8) -> bool:
    """Replace ``ours`` by ``original`` in the chain of wrappers over it (each one's ``__wrapped__``),
    where the one over it lets its ``__wrapped__`` be set (a wrapt proxy does); False if it cannot."""
    for _ in range(depth):
        inner = getattr(outer, "__wrapped__", None)
        if inner is None:
            return False
        if inner is ours:  # a function's ``__wrapped__`` is only a note: its code still calls ours
            if not isinstance(outer, _PROXY):
                return False
            try:
                outer.__wrapped__ = original
            except (AttributeError, TypeError):
                return False
            return True
        outer = inner
    return False


class Patcher:
    """Applies wrapt wrappers and remembers them so they can all be undone."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        #: ``(parent, attribute, original, ours)``; for a class, ``(ref to it, attribute, None, ref to
        #: ours)`` (``_entry``): a class defined at run time (a family's subclass) is not kept alive.
        self._applied: list[tuple[Any, str, Any, Any]] = []
        self._pruned_at = 0  # how many entries were left by the last ``_prune``
        #: The targets that could not be patched, each with why (``autotrace info`` lists them).
        self.skipped: list[str] = []

    def wrap(self, module: str, target: str, wrapper: Callable[..., Any], optional: bool = False,
             expects: tuple[str, ...] = ()) -> bool:
        """Wrap ``module:target`` (``Class.method`` allowed); False, with one warning, if it is gone.

        ``optional`` targets exist only in some versions of the library and are skipped quietly.
        ``expects`` names the leading positional parameters (after ``self``) the wrapper reads by
        position; a target whose signature says otherwise is not wrapped.
        """
        try:
            parent: Any = importlib.import_module(module)
            *path, attribute = target.split(".")
            for part in path:
                parent = getattr(parent, part)
            original = parent.__dict__[attribute] if isinstance(parent, type) else getattr(parent, attribute)
        except (ImportError, AttributeError, KeyError) as exc:
            if optional:
                return False
            self._skipped(module, target, type(exc).__name__)
            return False
        if expects and not _leads_with(original, expects, skip_self=isinstance(parent, type)):
            self._skipped(module, target, "its parameters changed")
            return False
        self._apply(parent, attribute, original, wrapper)
        return True

    def _skipped(self, module: str, target: str, reason: str) -> None:
        self.skipped.append(f"{module}.{target} ({reason})")
        count(f"integration_patch_skipped.{self.owner}")
        log_once(f"patch:{self.owner}:{module}:{target}", "autotrace: %s cannot patch %s.%s (%s); that "
                 "part is not traced", self.owner, module, target, reason)

    def wrap_object(self, parent: Any, attribute: str, wrapper: Callable[..., Any]) -> None:
        """Wrap an attribute of an object already in hand (e.g. each class of a family)."""
        original = parent.__dict__[attribute] if isinstance(parent, type) else getattr(parent, attribute)
        self._apply(parent, attribute, original, wrapper)

    def _apply(self, parent: Any, attribute: str, original: Any, wrapper: Callable[..., Any]) -> None:
        wrapt.wrap_function_wrapper(parent, attribute, wrapper)
        ours = parent.__dict__[attribute] if isinstance(parent, type) else getattr(parent, attribute)
        self._applied.append(_entry(parent, attribute, original, ours))
        if len(self._applied) >= 2 * max(self._pruned_at, 64):  # amortised: the entries stay about as many as live ones
            self._applied = [entry for entry in self._applied if _live(entry) is not None]
            self._pruned_at = len(self._applied)

    def unwrap_all(self) -> None:
        """Restore every original, newest first (a class let go since needs none). A wrapper another
        library has put over ours since is kept: ours is taken from under it when it is a wrapt proxy
        (its ``__wrapped__`` set to the original), else left in place, counted (``integration_patch_kept``)."""
        while self._applied:
            live = _live(self._applied.pop())
            if live is None:
                continue
            parent, attribute, original, ours = live
            current = parent.__dict__.get(attribute) if isinstance(parent, type) else getattr(parent, attribute, None)
            if current is ours:
                setattr(parent, attribute, original)
            elif not _take_from_under(current, ours, original):
                count(f"integration_patch_kept.{self.owner}")
                log_once(f"patch_kept:{self.owner}", "autotrace: another library wrapped what %s patched; "
                         "autotrace's wrapper stays under it after uninstall()", self.owner)
        self.skipped.clear()

    @property
    def active(self) -> bool:
        return self.applied > 0

    @property
    def applied(self) -> int:
        """How many patches are in place."""
        return sum(_live(entry) is not None for entry in self._applied)


def _entry(parent: Any, attribute: str, original: Any, ours: Any) -> tuple[Any, str, Any, Any]:
    """What ``Patcher`` remembers of a patch: a class and our wrapper held weakly (the wrapper holds
    the original, which may hold the class: a method using ``super()``), anything else as it is."""
    if isinstance(parent, type):
        try:
            return weakref.ref(parent), attribute, None, weakref.ref(ours)
        except TypeError:  # a wrapper that cannot be referred to weakly
            pass
    return parent, attribute, original, ours


def _live(entry: tuple[Any, str, Any, Any]) -> tuple[Any, str, Any, Any] | None:
    """A remembered patch as ``(parent, attribute, original, ours)``; None if its class is gone."""
    parent, attribute, _, ours = entry
    if type(parent) is not weakref.ref:
        return entry
    parent, ours = parent(), ours()
    if parent is None or ours is None:
        return None
    return parent, attribute, ours.__wrapped__, ours


def _leads_with(function: Any, names: tuple[str, ...], skip_self: bool) -> bool:
    """Whether ``function``'s first positional parameters are ``names`` (True if it cannot be read)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: nothing to compare
        return True
    positional = [p.name for p in parameters
                  if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    if skip_self:
        positional = positional[1:]
    return tuple(positional[:len(names)]) == names


class Integration:
    """Base class: set ``name``, ``distribution`` and ``supported``, implement ``_instrument``."""

    name: str = ""
    distribution: str = ""
    #: The import name whose first import triggers patching (the library is never imported by us).
    module: str = ""
    supported: str = ""

    def __init__(self) -> None:
        self.patcher = Patcher(self.name)
        self.instrumented = False

    def installed_version(self) -> str | None:
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    def check(self) -> str | None:
        """None if the library is present in a supported version, else the reason to skip."""
        version = self.installed_version()
        if version is None:
            return "not installed"
        if self.supported:
            try:
                if Version(version) not in SpecifierSet(self.supported):
                    return f"{self.distribution} {version} is outside the supported range {self.supported}"
            except InvalidVersion:
                return f"{self.distribution} has an unparseable version {version!r}"
        return None

    def instrument(self) -> bool:
        """Patch the library (idempotent); returns whether anything is instrumented."""
        if self.instrumented:
            return True
        try:
            self._instrument()
        except BaseException:  # failed partway: undo what was patched, so nothing is left half-done
            self._undo_partial()
            raise
        self.instrumented = True
        return True

    def _undo_partial(self) -> None:
        try:
            self._uninstrument()
        except Exception:  # its teardown may assume a whole install; the patches are undone regardless
            pass
        self.patcher.unwrap_all()

    def uninstrument(self) -> None:
        """Restore the library exactly as it was."""
        if not self.instrumented:
            return
        self._uninstrument()
        self.patcher.unwrap_all()
        self.instrumented = False

    def _instrument(self) -> None:
        raise NotImplementedError

    def _uninstrument(self) -> None:
        """Extra teardown beyond the patches (optional)."""
