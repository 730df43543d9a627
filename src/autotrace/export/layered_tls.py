"""TLS inside TLS, for a tunnel through an ``https://`` proxy: the hop to the proxy is one TLS
session, and the session with Langfuse runs inside it. An ``SSLSocket`` cannot wrap another (it
reads its file descriptor directly), so the inner session is an ``SSLObject`` whose records are
carried by the outer socket."""

from __future__ import annotations

import io
import ssl
import time
from collections.abc import Callable
from typing import TypeVar

_T = TypeVar("_T")

#: Bytes handed to the inner session at a time: a large export body is encrypted and sent in
#: slices, never held whole a second time in memory.
_SLICE = 64 << 10


class LayeredTLS:
    """A TLS session with ``server_hostname`` (its certificate checked by ``context``) over
    ``outer``, an open TLS connection to a proxy tunnelling to it. As much of a socket as
    ``http.client`` uses: ``sendall``, ``recv_into``, ``makefile("rb")``, timeouts and ``close``.
    A timeout bounds each call (the handshake, a ``sendall``, a ``recv_into``) as a whole, as
    CPython's TLS sockets do, however many reads and writes of the outer socket it takes: a peer
    trickling a record byte by byte must not outlast it. As with a socket, ``close`` waits
    for the readers ``makefile`` gave to be closed (``http.client`` closes the connection of a
    "Connection: close" answer before its body is read). The handshake runs here."""

    def __init__(self, outer: ssl.SSLSocket, context: ssl.SSLContext, server_hostname: str) -> None:
        self._outer = outer
        self._timeout = outer.gettimeout()
        self._readers = 0
        self._closing = False
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._session = context.wrap_bio(self._incoming, self._outgoing, server_hostname=server_hostname)
        self._run(self._session.do_handshake)

    def _run(self, step: Callable[..., _T], *args: object) -> _T:
        """Do ``step`` on the inner session, sending the records it makes and reading the outer
        socket for as long as it needs more, all within the timeout."""
        deadline = time.monotonic() + self._timeout if self._timeout else None
        while True:
            try:
                result = step(*args)
            except ssl.SSLWantReadError:
                self._send_pending(deadline)
                if self._incoming.eof:  # it wants more than the peer will ever send
                    raise ssl.SSLEOFError(ssl.SSL_ERROR_EOF, "the tunnel ended inside a TLS record") from None
                self._bound(deadline)
                data = self._outer.recv(_SLICE)
                if data:
                    self._incoming.write(data)
                else:
                    self._incoming.write_eof()
                continue
            self._send_pending(deadline)
            return result

    def _bound(self, deadline: float | None) -> None:
        """Let the outer socket's next operation wait only until ``deadline``, if any."""
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
            self._outer.settimeout(remaining)

    def _send_pending(self, deadline: float | None) -> None:
        pending = self._outgoing.read()
        if pending:
            self._bound(deadline)
            self._outer.sendall(pending)

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        while view:
            written = self._run(self._session.write, view[:_SLICE])
            view = view[written:]

    def recv_into(self, buffer: bytearray | memoryview, nbytes: int = 0) -> int:
        """Read up to ``nbytes`` (default: the buffer's size) decrypted bytes; 0 once the peer has
        closed the session."""
        return self._run(self._session.read, nbytes or len(buffer), buffer)

    def makefile(self, mode: str = "rb", buffering: int = io.DEFAULT_BUFFER_SIZE) -> io.BufferedReader:
        """A buffered binary reader of the decrypted stream (``http.client`` reads responses so)."""
        if mode != "rb":
            raise ValueError(f"only 'rb' is supported, not {mode!r}")
        self._readers += 1
        return io.BufferedReader(_Reader(self), buffering)

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout
        self._outer.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self._timeout

    def close(self) -> None:
        """Close the connection to the proxy (and so the tunnel) once no reader is open; no
        closing TLS exchange inside."""
        self._closing = True
        if self._readers <= 0:
            self._outer.close()

    def _reader_closed(self) -> None:
        self._readers -= 1
        if self._closing and self._readers <= 0:
            self._outer.close()


class _Reader(io.RawIOBase):
    """The raw reader under ``LayeredTLS.makefile``; closing it leaves the connection open, as a
    socket's own file does."""

    def __init__(self, session: LayeredTLS) -> None:
        super().__init__()
        self._session = session

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        return self._session.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            self._session._reader_closed()
        super().close()
