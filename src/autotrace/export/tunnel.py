"""HTTPS through a forward proxy's CONNECT tunnel, asked for the same way on every Python: an
HTTP/1.1 ``CONNECT`` naming its authority (an IPv6 literal in brackets) with a ``Host`` header.
(Python 3.11's own tunnel sends an IPv6 literal without brackets, which proxies refuse, and no Host.)
The hop to the proxy may itself be TLS (an ``https://`` proxy): then TLS to Langfuse runs inside it."""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
from collections.abc import Iterator, Mapping

from .layered_tls import LayeredTLS


class TunnelRefused(OSError):
    """The proxy answered CONNECT with a status other than 200."""

    def __init__(self, status: int) -> None:
        super().__init__(f"proxy refused CONNECT (HTTP {status})")
        self.status = status


class ProxyCertificateError(ssl.SSLCertVerificationError):
    """An ``https://`` proxy's certificate failed verification (the proxy's, not Langfuse's)."""


@contextlib.contextmanager
def _blaming_the_proxy() -> Iterator[None]:
    """A certificate failure in this block is the proxy's (``ProxyCertificateError``)."""
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        blamed = ProxyCertificateError(*exc.args)
        blamed.verify_code = getattr(exc, "verify_code", None)
        blamed.verify_message = getattr(exc, "verify_message", None)
        raise blamed from exc


class ProxyTLSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to an ``https://`` proxy itself, for a plain-HTTP host (requests in
    absolute form); the proxy's certificate is checked against its host."""

    def connect(self) -> None:
        with _blaming_the_proxy():
            super().connect()


def authority(host: str, port: int) -> str:
    """``host:port`` as a request names it: an IPv6 literal in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class TunnelledHTTPSConnection(http.client.HTTPSConnection):
    """An ``HTTPSConnection`` to ``host`` whose socket is a tunnel opened at the proxy ``via``
    (``connect_headers``, e.g. its credentials, go with the CONNECT only). Requests on it name
    ``host`` as a direct connection would; its certificate is checked against ``host``. The proxy's
    answer is read with ``response_class``, so a deadline set there bounds it. With ``via_tls``, the
    connection to the proxy is TLS too (its certificate checked against the proxy's host)."""

    def __init__(self, host: str, port: int, *, via: tuple[str, int], connect_headers: Mapping[str, str],
                 timeout: float, context: ssl.SSLContext, via_tls: bool = False) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._via = via
        self._via_tls = via_tls
        self._connect_headers = dict(connect_headers)
        self._tls = context

    def connect(self) -> None:
        raw = self._create_connection(self._via, self.timeout, self.source_address)  # type: ignore[attr-defined]
        sock: socket.socket = raw
        try:
            with contextlib.suppress(OSError):  # as http.client: not every socket has it
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._via_tls:
                with _blaming_the_proxy():
                    sock = self._tls.wrap_socket(raw, server_hostname=self._via[0])
            target = authority(self.host, self.port)
            head = [f"CONNECT {target} HTTP/1.1", f"Host: {target}",
                    *(f"{name}: {value}" for name, value in self._connect_headers.items())]
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
            answer = self.response_class(sock, method="CONNECT")
            try:
                answer.begin()  # the status line and headers; a 200 to CONNECT has no body
            finally:
                answer.close()  # its reader only: the socket stays open
            if answer.status != 200:
                raise TunnelRefused(answer.status)
            if isinstance(sock, ssl.SSLSocket):  # TLS to the proxy: TLS to the host runs inside it
                self.sock = LayeredTLS(sock, self._tls, self.host)  # type: ignore[assignment]
            else:
                self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raw.close()  # a no-op once wrapped (the TLS socket took its descriptor)
            raise
