"""The one HTTP server shell the loopback fakes share: 127.0.0.1 (or ``::1``), an ephemeral port, HTTP/1.1
keep-alive, a daemon thread, quiet logs, HTTPS when given a TLS context. Subclasses implement
``_handle`` for GET and POST requests (``handler.command`` says which)."""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from ..export.tunnel import authority


class _Server(ThreadingHTTPServer):
    #: Connections waiting to be accepted: socketserver's 5 overflows under a test's burst of
    #: concurrent clients, whose connections the kernel then resets.
    request_queue_size = 128


class _Server6(_Server):
    address_family = socket.AF_INET6


class LoopbackServer:
    """``with Subclass() as server: server.url`` — started on entry, stopped on exit."""

    _server: ThreadingHTTPServer | None = None
    #: Serve HTTPS with this server-side context (kept across a restart); None serves plain HTTP.
    tls: ssl.SSLContext | None = None
    #: The loopback address served on: ``127.0.0.1``, or ``::1`` (set before ``start``).
    host = "127.0.0.1"

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def start(self, port: int = 0, tls: ssl.SSLContext | None = None) -> Self:
        """Serve on ``port`` (default: any free one), e.g. the port of an endpoint that was down;
        HTTPS with ``tls`` (or ``self.tls``)."""
        owner = self
        if tls is not None:
            self.tls = tls
        context = self.tls

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                if context is not None:  # the handshake runs on this connection's thread, not the acceptor's
                    self.request = context.wrap_socket(self.request, server_side=True)
                super().setup()

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                owner._handle(self)

            do_GET = do_POST

        self._server = (_Server6 if ":" in self.host else _Server)((self.host, port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=type(self).__name__, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls is not None else 'http'}://{authority(self.host, self.port)}"
