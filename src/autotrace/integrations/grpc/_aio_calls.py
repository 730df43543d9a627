"""The ``grpc.aio`` client calls' ends: a call's status read at its done-callback (or looked for
again when grpc.aio replaced it), and the calls still running on each event loop, ended when the
loop ends (``_LoopCalls``)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from ..._internal import guarded_failure
from ...observation import Observation
from ._common import finish_call


def _finished(obs: Observation, code: Any, details: Any) -> None:
    """End ``obs`` with a call's status: a cancelled call was interrupted, not failed."""
    finish_call(obs, code, details, interrupted=code is grpc.StatusCode.CANCELLED)


_pending_tasks: set[Any] = set()


def _result_now(coroutine: Any) -> Any:
    """The result of ``coroutine`` if it finishes without waiting; LookupError if it would wait."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    finally:
        coroutine.close()
    raise LookupError("would wait")


#: The status grpc.aio gives a call whose request it failed to write, the server having ended the
#: call: it replaces it with the server's status (what the application gets) without calling back.
_WRITE_FAILED = (grpc.StatusCode.INTERNAL, "Internal error from Core")
_LOOK_AGAIN = (0.0, 0.01, 0.1, 1.0)  # seconds between looks for the server's status


def _kept(task: asyncio.Task[None]) -> None:
    """Hold ``task`` until it is done (the loop keeps only a weak reference)."""
    _pending_tasks.add(task)
    task.add_done_callback(_pending_tasks.discard)


def _look_again(obs: Observation, call: Any, running: _LoopCalls | None) -> bool:
    """End ``obs`` with the status that replaces ``_WRITE_FAILED``, in a task; False if none can start."""
    coroutine = _replaced_status(obs, call, running)
    try:
        _kept(asyncio.get_running_loop().create_task(coroutine))
    except Exception:
        coroutine.close()
        return False
    return True


async def _replaced_status(obs: Observation, call: Any, running: _LoopCalls | None) -> None:
    status: tuple[Any, Any] = _WRITE_FAILED
    try:
        for delay in _LOOK_AGAIN:
            await asyncio.sleep(delay)
            status = _status_now(call) or _WRITE_FAILED
            if status != _WRITE_FAILED:
                break
    finally:  # also when the loop ends first: the status known by then
        status = _status_now(call) or status
        if running is not None:
            running.discard(obs)
        _finished(obs, *status)


def _status_now(call: Any) -> tuple[Any, Any] | None:
    """The status of the ``grpc.aio`` call if it has one now (calls report it through coroutines,
    which for a done call finish at once); None if it would have to wait."""
    try:
        return _result_now(call.code()), _result_now(call.details())
    except Exception:
        return None


def _finish_if_known(obs: Observation, call: Any) -> bool:
    """End ``obs`` with the status of the ``grpc.aio`` call if it has one now; False if it would
    have to wait."""
    status = _status_now(call)
    if status is None:
        return False
    _finished(obs, *status)
    return True


def _on_done_aio(obs: Observation, running: _LoopCalls | None) -> Callable[[Any], None]:
    """The status is read at once, as a task may never run (a call freed as its loop ends calls
    back with no loop running; ``asyncio.run`` cancels tasks left at its end). A task waits for a
    status not there yet."""

    async def read_status(call: Any) -> None:
        try:
            code, details = await call.code(), await call.details()
        except Exception:
            code, details = None, None
        except asyncio.CancelledError:
            finish_call(obs, None)
            raise
        _finished(obs, code, details)

    def done(call: Any) -> None:
        status = _status_now(call)
        if status == _WRITE_FAILED and _look_again(obs, call, running):
            return
        if running is not None:
            running.discard(obs)
        if status is not None:
            _finished(obs, *status)
            return
        try:
            _kept(asyncio.get_running_loop().create_task(read_status(call)))
        except Exception as exc:
            guarded_failure("grpc.aio_status", exc)
            finish_call(obs, None)

    return done


class _LoopCalls:
    """The ``grpc.aio`` calls still running on one event loop. A call left running as its loop
    ends (never awaited, a stream read in part) reports its status only when it is freed: while
    the application holds it, its span stayed open and was never exported. Runners such as
    ``asyncio.run`` close the loop's async generators (``shutdown_asyncgens``) after its tasks;
    while calls run, one is registered here, parked at its ``yield``, and its closing ends those
    still running: with their status if they have one, else CANCELLED. It is closed, and the loop
    let go, when the last call ends."""

    __slots__ = ("calls", "loop", "sentinel")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.calls: dict[Observation, weakref.ref[Any]] = {}
        self.sentinel = self._until_loop_shutdown()
        try:
            self.sentinel.asend(None).send(None)  # to its yield: the loop now tracks it
        except StopIteration:
            pass

    async def _until_loop_shutdown(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if _loop_calls.get(self.loop) is self:
                del _loop_calls[self.loop]
            calls, self.calls = self.calls, {}
            for obs, ref in calls.items():
                if not _finish_if_known(obs, ref()):
                    finish_call(obs, grpc.StatusCode.CANCELLED, "the event loop ended before the call did",
                                interrupted=True)

    def discard(self, obs: Observation) -> None:
        self.calls.pop(obs, None)
        if not self.calls and _loop_calls.get(self.loop) is self:
            del _loop_calls[self.loop]
            try:
                self.sentinel.aclose().send(None)
            except StopIteration:
                pass
            except Exception as exc:  # being closed by the loop right now
                guarded_failure("grpc.aio_loop_watch", exc)


_loop_calls: dict[asyncio.AbstractEventLoop, _LoopCalls] = {}


def _forget_closed_loops() -> None:
    """End the calls still running on loops closed without closing their async generators
    (``loop.close()`` after ``run_until_complete``, not ``asyncio.run``), as their closing would
    have: each such loop, a new one per request, was held for good, with its calls' spans, open."""
    for loop, running in list(_loop_calls.items()):
        if loop.is_closed():
            try:
                running.sentinel.aclose().send(None)  # runs its ``finally``: as at the loop's shutdown
            except StopIteration:
                pass
            except Exception as exc:
                guarded_failure("grpc.aio_loop_watch", exc)


def _running_on_loop(obs: Observation, call: Any) -> _LoopCalls | None:
    """Note ``call`` as running on the current loop (see ``_LoopCalls``)."""
    loop = asyncio.get_running_loop()
    running = _loop_calls.get(loop)
    if running is None:
        if getattr(loop, "_asyncgens_shutdown_called", False):  # a new async generator would be warned about
            return None
        _forget_closed_loops()
        running = _loop_calls[loop] = _LoopCalls(loop)
    running.calls[obs] = weakref.ref(call)
    return running
