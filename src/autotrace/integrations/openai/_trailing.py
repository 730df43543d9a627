"""The usage event of a stream its reader leaves once the reply has finished.

The usage event autotrace asks for (``stream_options.include_usage``) comes after the chunk with
the finish reason. A reader that stops at the finish reason (``if chunk.choices[0].finish_reason:
break``), or a stream helper that raises on it (``chat.completions.stream(response_format=...)``
cut short: ``LengthFinishReasonError``), would leave the usage of a reply the API billed unread.
So, when such a stream is left or closed, its trailing events are read first: a few at most, and
only while the reply has finished, the usage was autotrace's to ask for and has not arrived. The
API sends them with the finish reason, so they are read from what the connection holds already;
a stream waits for them no longer than the SDK's own drain after ``[DONE]`` does. One read at a
time (``StreamTracking.reading``): an async stream's iteration its reader left is closed by the
event loop later, maybe while ``close()`` reads or the reader reads on; the read in progress ends
the observation, and the reader's next read waits for it (``wait_read``).
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from ..._internal import count

if TYPE_CHECKING:
    from ._stream import StreamTracking

#: Events read past the finish reason for the usage event (Azure's content-filter annotations
#: may come between them).
_MAX_TRAILING = 8
#: How long a stream waits for them (seconds), as the SDK drains an HTTP/1.1 response.
_WAIT = 0.1
#: The HTTP versions whose connection serves one response at a time: the only ones shut.
_OWN_CONNECTION = frozenset({b"HTTP/1.1", b"HTTP/1.0"})
#: How long the deadlines' thread waits for another before it ends (seconds).
_IDLE = 1.0


def _wanted(found: StreamTracking) -> bool:
    """Whether the stream's usage is still to come after a reply that has finished."""
    state = found.state
    if found.done or found.reading or not state.hide_usage_chunk:  # ``reading``: another reads them
        return False
    state.fold()
    return state.usage is None and state.cut_usage_event() is None and not state._unfinished()


def _taken(chunk: Any, found: StreamTracking) -> bool:
    """Keep a trailing chunk; whether the usage has arrived (in it, or cut from the bytes)."""
    found.state.take(chunk)
    return getattr(chunk, "usage", None) is not None or found.state.cut_usage_event() is not None


def read_trailing(chunks: Iterator[Any] | None, found: StreamTracking, stream: Any) -> None:
    """Read the events that follow a finished reply from the SDK's ``chunks``, until the usage
    event or the end of the stream, for at most ``_WAIT`` (then the connection, which the reader
    left, is shut: ``_Deadline``); never raises (an error there is the stream's end). Nothing is
    read from a response of a shared connection (HTTP/2) or whose socket is not to be found: the wait
    could not be bounded."""
    if chunks is None or not _wanted(found):
        return
    deadline = _Deadline.of(stream)
    if deadline is None:
        count("openai.stream_trailing_unread")
        return
    found.reading = True
    try:
        for _ in range(_MAX_TRAILING):
            if _taken(next(chunks), found):
                return
    except StopIteration:
        return
    except Exception:  # the connection failed or was shut, the generator runs already: the usage stays unknown
        count("openai.stream_trailing_unread")
    finally:
        found.reading = False
        deadline.cancel()


class _Deadline:
    """Shuts a connection down once ``_WAIT`` has passed (``_Watchdog``), unless cancelled first: a
    blocking read of a socket another thread shuts returns at once (a close would not wake it)."""

    __slots__ = ("_lock", "_over", "_socket", "at")

    def __init__(self, sock: socket.socket) -> None:
        self._socket = sock
        self._lock = threading.Lock()
        self._over = False
        self.at = time.monotonic() + _WAIT
        _WATCHDOG.watch(self)

    @classmethod
    def of(cls, stream: Any) -> _Deadline | None:
        """A deadline for the connection of the SDK's ``stream`` (its httpx response's socket);
        None for an HTTP/2 response: its connection carries the client's other requests too."""
        try:
            extensions = stream.response.extensions
            if extensions.get("http_version") not in _OWN_CONNECTION:
                return None
            network = extensions.get("network_stream")
            sock = network.get_extra_info("socket") if network is not None else None
            return cls(sock) if isinstance(sock, socket.socket) else None
        except Exception:  # another transport, a changed SDK, no thread to be had
            return None

    def fire(self) -> None:
        """The wait is over: the connection is shut, unless the read ended first."""
        with self._lock:
            if self._over:
                return
            self._over = True
            try:  # the plain socket's ``shutdown``: a TLS socket's own drops its TLS state (and a
                # duplicate descriptor is none on Windows, whose sockets are no file descriptors)
                socket.socket.shutdown(self._socket, socket.SHUT_RDWR)
            except OSError:  # closed meanwhile
                pass
        count("openai.stream_trailing_timeout")

    def cancel(self) -> None:
        """The read is over: the connection is left as it is (it may go back to the pool)."""
        with self._lock:
            self._over = True


class _Watchdog:
    """One daemon thread for every deadline, started at the first (again once it ended, idle for
    ``_IDLE``, and in a forked child, which has none): a thread per stream left would cost more than
    the whole call's tracing."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._ready = threading.Condition(threading.Lock())
        self._due: list[tuple[float, int, _Deadline]] = []
        self._order = itertools.count()
        self._started = False

    def watch(self, deadline: _Deadline) -> None:
        with self._ready:
            if not self._started:
                threading.Thread(target=self._run, name="autotrace-openai-trailing", daemon=True).start()
                self._started = True
            heapq.heappush(self._due, (deadline.at, next(self._order), deadline))
            self._ready.notify()

    def _run(self) -> None:
        ready, due = self._ready, self._due
        while True:
            with ready:
                while not due or due[0][0] > time.monotonic():
                    if due:
                        ready.wait(due[0][0] - time.monotonic())
                    elif not ready.wait(_IDLE) and not due:  # none for a while: the thread ends
                        self._started = False
                        return
                deadline = heapq.heappop(due)[2]
            deadline.fire()  # nothing if cancelled


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):  # a parent's thread and lock are not the child's
    os.register_at_fork(after_in_child=_WATCHDOG._reset)


async def aread_trailing(chunks: AsyncIterator[Any] | None, found: StreamTracking) -> None:
    """``read_trailing`` for an async stream, waiting no longer than ``_WAIT``."""
    if chunks is None or not _wanted(found):
        return
    import anyio  # the SDK's own dependency: works under asyncio and trio alike

    try:
        # the iteration its reader left is closed by the event loop, maybe while ``close()`` reads:
        # the observation's end is this read's, a new iteration waits for it (``wait_read``)
        reading = found.reading = anyio.Event()
    except Exception:  # no event loop: an iteration closed by the collector
        count("openai.stream_trailing_unread")
        return
    try:
        with anyio.move_on_after(_WAIT):
            for _ in range(_MAX_TRAILING):
                if _taken(await chunks.__anext__(), found):
                    return
    except StopAsyncIteration:
        return
    except Exception:
        count("openai.stream_trailing_unread")
    finally:
        found.reading = False
        reading.set()


async def wait_read(found: StreamTracking) -> None:
    """Wait until another task's ``aread_trailing`` of ``found`` is over: the SDK's chunks cannot
    be read while it reads them (``anext(): asynchronous generator is already running``)."""
    reading = found.reading
    if reading and reading is not True:  # an async read's event (``True``: a sync read, another thread's)
        await reading.wait()
