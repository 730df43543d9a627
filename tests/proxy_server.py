"""A loopback forward proxy for tests: absolute-form HTTP requests (forwarded, keep-alive) and
CONNECT tunnels (bytes piped both ways, to an IPv6 literal too). It records each request line with
its Proxy-Authorization and Host headers, and can demand credentials (407 without the right ones).
Given a TLS context, it is an ``https://`` proxy: clients reach it by TLS."""

from __future__ import annotations

import base64
import http.client
import socket
import socketserver
import ssl
import threading
import time
from typing import BinaryIO, Self, cast
from urllib.parse import urlsplit

#: Credentials of a proxy that demands them (``ProxyServer(require_auth=BASIC)``), as a proxy URL
#: gives them (``ENCODED``: the ``:`` and ``@`` of the password percent-encoded); ``SECRETS`` are
#: what no log line or output may show of them, nor of the ``sk-lf-proxy`` key tests export with.
USER, PASSWORD = "proxy-user", "pr0xy:s3cret@pw"
ENCODED = "proxy-user:pr0xy%3As3cret%40pw"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRETS = ("s3cret", "pr0xy", BASIC.split()[1], "sk-lf-proxy")


def assert_no_secret(text: str) -> None:
    """``text`` shows none of ``SECRETS``."""
    for secret in SECRETS:
        assert secret not in text


#: Headers that concern the hop to the proxy, never forwarded.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authorization", "proxy-connection", "te",
                         "trailer", "transfer-encoding", "upgrade"})


class ProxyServer:
    """``with ProxyServer() as proxy: proxy.url``; ``proxy.seen`` lists (request line, Proxy-Authorization)."""

    def __init__(self, require_auth: str | None = None, tls: ssl.SSLContext | None = None) -> None:
        #: The Proxy-Authorization value demanded (``Basic ...``); None lets every request through.
        self.require_auth = require_auth
        #: The server side of TLS with clients (an ``https://`` proxy), if any.
        self.tls = tls
        #: How many client connections failed their TLS handshake.
        self.failed_handshakes = 0
        self._seen: list[tuple[str, str | None]] = []
        self._hosts: list[str | None] = []
        self._tunnels: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None

    @property
    def seen(self) -> list[tuple[str, str | None]]:
        with self._lock:
            return list(self._seen)

    @property
    def hosts(self) -> list[str | None]:
        """The Host header of each request received, in order (None without one)."""
        with self._lock:
            return list(self._hosts)

    def wait_failed_handshakes(self, n: int, timeout: float = 5.0) -> int:
        """``failed_handshakes`` once it reaches ``n`` (the server notes a failure on its own
        thread, maybe after the client has given up), or as it is after ``timeout``."""
        until = time.monotonic() + timeout
        while self.failed_handshakes < n and time.monotonic() < until:
            time.sleep(0.01)
        return self.failed_handshakes

    @property
    def lines(self) -> list[str]:
        """The request lines received, in order."""
        return [line for line, _ in self.seen]

    @property
    def port(self) -> int:
        assert self._server is not None, "the proxy is not started"
        return int(self._server.server_address[1])

    def drop_tunnels(self) -> None:
        """End every open tunnel at the client's side, as a proxy does to idle ones."""
        with self._lock:
            tunnels, self._tunnels = self._tunnels, []
        for conn in tunnels:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def url(self, credentials: str = "") -> str:
        """``http[s]://[credentials@]127.0.0.1:port``."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            rbufsize = 0  # unbuffered: no byte of a tunnel is read ahead into a buffer

            def setup(self) -> None:
                self.refused = False
                if owner.tls is not None:  # the handshake here, on the connection's own thread
                    try:
                        self.request = owner.tls.wrap_socket(self.request, server_side=True)
                    except OSError:  # e.g. the client refused the proxy's certificate
                        with owner._lock:
                            owner.failed_handshakes += 1
                        self.refused = True
                super().setup()

            def handle(self) -> None:
                if not self.refused:
                    owner._serve(self.connection, cast(BinaryIO, self.rfile))

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- one client connection ----------------------------------------------------------------------
    def _serve(self, conn: socket.socket, rfile: BinaryIO) -> None:
        while True:
            head = _read_head(rfile)
            if head is None:
                return
            line, headers = head
            auth = headers.get("proxy-authorization")
            with self._lock:
                self._seen.append((line, auth))
                self._hosts.append(headers.get("host"))
            if self.require_auth is not None and auth != self.require_auth:
                _drain(rfile, headers)
                conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
                continue
            method, target, _ = line.split(" ", 2)
            if method == "CONNECT":
                with self._lock:
                    self._tunnels.append(conn)
                self._tunnel(conn, target)
                return
            if not self._forward(conn, rfile, method, target, headers):
                return

    @staticmethod
    def _tunnel(conn: socket.socket, target: str) -> None:
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.removeprefix("[").removesuffix("]"), int(port)), timeout=5)
        except OSError:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        upstream.settimeout(None)
        pipe = threading.Thread(target=_pipe, args=(upstream, conn), daemon=True)
        pipe.start()
        _pipe(conn, upstream)
        pipe.join(5)
        upstream.close()

    @staticmethod
    def _forward(conn: socket.socket, rfile: BinaryIO, method: str, target: str, headers: dict[str, str]) -> bool:
        """Send one absolute-form request on to its origin and its answer back; False closes."""
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        body = _drain(rfile, headers)
        forwarded = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP}
        origin = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=10)
        try:
            origin.request(method, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""), body=body,
                           headers=forwarded)
            response = origin.getresponse()
            answer = response.read()
            status, reason = response.status, response.reason
            answer_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP
                              and k.lower() != "content-length"]
        except OSError:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        finally:
            origin.close()
        head = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in answer_headers),
                f"Content-Length: {len(answer)}"]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + answer)
        return True


def _read_head(rfile: BinaryIO) -> tuple[str, dict[str, str]] | None:
    """A request line and its lower-cased headers; None at the end of the connection."""
    line = rfile.readline(65537)
    if not line:
        return None
    headers: dict[str, str] = {}
    while True:
        raw = rfile.readline(65537)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return line.decode("latin-1").rstrip("\r\n"), headers


def _drain(rfile: BinaryIO, headers: dict[str, str]) -> bytes:
    """The request's body (``Content-Length`` bytes)."""
    length = int(headers.get("content-length") or 0)
    chunks, left = [], length
    while left > 0:
        chunk = rfile.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes until ``source`` ends, then end ``sink``'s sending side."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
