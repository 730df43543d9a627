"""A sync response body that Starlette iterates in its thread pool (a ``StreamingResponse`` or an
``EventSourceResponse`` of a plain generator, FastAPI's sync server-sent events), within a request
served by ``TenantASGIMiddleware``, runs every step in one context, and a generator left unfinished
(the client went away) and held by nothing else is closed in it when the request ends (or, in a
long connection, when the next body starts): as a WSGI server's body is (``middleware._ScopedBody``).

Starlette steps such a body with ``anyio.to_thread.run_sync``, which runs each step in a fresh copy
of the request's context: what a step set was gone at the next one. An observation or a tenant
scope held open across a ``yield`` (``with autotrace.start_chain(...): ... yield ...``) was no
longer current after it: the calls made there went under the request's span instead (in the
request's tenant, not the block's), and the block's end could not restore the context
(``context_not_restored``). And Starlette never closes a body it stops reading: a generator left
at a ``yield`` was closed only by a later garbage collection, at any time, in whatever request's
context was current then; until then its observations (an LLM stream's too) stayed open.

Starlette's step function (``starlette.concurrency._next``, looked up by ``iterate_in_threadpool``
at each step, whoever imported that) is replaced, once, when the middleware is made; outside the
middleware's requests a step runs as before.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextvars import Context, ContextVar, copy_context
from types import GeneratorType
from typing import Any

from ._internal import log_once

#: The bodies a request served by ``TenantASGIMiddleware`` (a connection: a WebSocket's too) is
#: stepping, by ``id``, each with the context it runs its steps in (None outside such a request).
#: A body leaves it when it finishes, or when it is left: held by nothing else (``close_left``).
Bodies = dict[int, tuple[Iterator[Any], Context]]
serving: ContextVar[Bodies | None] = ContextVar("autotrace_asgi_bodies", default=None)
#: Starlette's own step function, once replaced.
_patched: list[Callable[[Iterator[Any]], Any]] = []
_patching = threading.Lock()


def _in_one_context(step: Callable[[Iterator[Any]], Any]) -> Callable[[Iterator[Any]], Any]:
    """Starlette's ``step``, run for an iterator of a served request in one context for all steps."""

    def next_in_one_context(iterator: Iterator[Any]) -> Any:
        bodies = serving.get()
        if bodies is None:
            return step(iterator)
        held = bodies.get(id(iterator))  # the body is held there: its id stays its own
        if held is None:
            close_left(bodies)  # a long connection keeps none it no longer reads
            held = bodies[id(iterator)] = (iterator, copy_context())
        try:
            return held[1].run(step, iterator)
        except BaseException:  # finished (Starlette's ``_StopIteration``) or failed: its reader stops
            bodies.pop(id(iterator), None)
            raise

    return next_in_one_context


def patch_starlette() -> None:
    """Replace Starlette's step function (once, whichever thread makes a middleware first), if
    Starlette is loaded; never imports it."""
    module = sys.modules.get("starlette.concurrency")
    if module is None or _patched:
        return
    with _patching:
        step = getattr(module, "_next", None)
        if callable(step) and not _patched:
            module._next = _in_one_context(step)
            _patched.append(step)


def _references(bodies: Bodies) -> list[tuple[int, int]]:
    """Each body of ``bodies`` by key, with its reference count here."""
    return [(key, sys.getrefcount(body)) for key, (body, _context) in list(bodies.items())]


#: A body's reference count in ``_references`` when ``bodies`` is all that holds it (measured, as
#: interpreters count references differently).
_HELD_HERE = _references({0: (iter(()), copy_context())})[0][1]


def close_left(bodies: Bodies, cut_off: bool = False) -> None:
    """Drop from ``bodies`` those their reader left: nothing else holds them (a loop broke out), or,
    when the response was ``cut_off`` (its client went away), any left unfinished. A generator
    among them left at a ``yield`` is closed in its context (as a garbage collection would, later,
    anywhere). One the application still holds after a response it finished (a job still reading
    it, a stream a later request resumes) is its own, and stays open. A generator's error when
    closed is the application's: said once, never raised (the response is over), as Python says
    one raised by a collected generator."""
    for key, references in _references(bodies):
        left = bodies.pop(key, None) if cut_off or references <= _HELD_HERE else None
        if left is None:
            continue
        body, context = left
        if isinstance(body, GeneratorType) and body.gi_frame is not None and not body.gi_running:
            try:
                context.run(body.close)
            except Exception as exc:
                log_once(f"asgi_body_close:{type(exc).__name__}", "autotrace: a streamed response body "
                         "left unfinished raised %s when closed", type(exc).__name__, exc_info=True)
