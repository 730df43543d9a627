"""A stream read over HTTP/2 shares its connection with the client's other requests: a reader that
stops at the finish reason while the usage event is late must not have that connection shut (every
other stream on it would fail). Real SDK over httpx's HTTP/2 to a loopback TLS server built on ``h2``."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from typing import Any

import openai
import pytest

import autotrace
from tests.helpers import CERTS, Traced, server_tls

pytestmark = pytest.mark.integrations("openai")

h2_connection = pytest.importorskip("h2.connection")
h2_config = pytest.importorskip("h2.config")
h2_events = pytest.importorskip("h2.events")

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def _event(payload: dict[str, Any] | str) -> bytes:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()


def _chunk(delta: dict[str, Any], finish: str | None) -> bytes:
    return _event({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


class _Http2Server:
    """Answers each chat stream with its content and its finish reason at once, and the rest (the
    usage event, ``[DONE]``, the stream's end) only once ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        context = server_tls()
        context.set_alpn_protocols(["h2"])
        self._context = context
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.listener.getsockname()[1]}/v1"

    def _serve(self) -> None:
        raw, _ = self.listener.accept()
        with self._context.wrap_socket(raw, server_side=True) as conn:
            h2 = h2_connection.H2Connection(config=h2_config.H2Configuration(client_side=False))
            h2.initiate_connection()
            conn.sendall(h2.data_to_send())
            waiting: list[int] = []
            conn.settimeout(0.05)
            while True:
                try:
                    data = conn.recv(65536)
                except (TimeoutError, ssl.SSLError):
                    data = None
                except OSError:
                    return
                if data == b"":
                    return
                for event in h2.receive_data(data) if data else ():
                    if isinstance(event, h2_events.StreamEnded):
                        sid = event.stream_id
                        h2.send_headers(sid, [(":status", "200"), ("content-type", "text/event-stream")])
                        h2.send_data(sid, _chunk({"role": "assistant", "content": "abc"}, None))
                        h2.send_data(sid, _chunk({}, "stop"))
                        waiting.append(sid)
                if self.release.is_set():
                    usage = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                             "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4,
                                                      "total_tokens": 13}}
                    for sid in waiting:
                        try:
                            h2.send_data(sid, _event(usage) + _event("[DONE]"), end_stream=True)
                        except Exception:  # a stream the client reset
                            pass
                    waiting.clear()
                try:
                    conn.sendall(h2.data_to_send())
                except OSError:
                    return

    def close(self) -> None:
        self.release.set()
        self.thread.join(10)
        self.listener.close()


def test_a_stream_left_at_its_finish_reason_never_shuts_an_http2_connection_other_streams_share(
        traced: Traced) -> None:
    server = _Http2Server()
    http = openai.DefaultHttpxClient(http2=True, verify=ssl.create_default_context(cafile=str(CERTS / "ca.pem")))
    client = openai.OpenAI(base_url=server.url, api_key="k", max_retries=0, timeout=30, http_client=http)
    try:
        left = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        other = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        assert left.response.http_version == other.response.http_version == "HTTP/2"
        for chunk in left:  # left at the finish reason while its usage is late
            if chunk.choices[0].finish_reason:
                break
        server.release.set()
        read = [(c.choices[0].delta.content if c.choices else None, c.usage) for c in other]  # the other stream
    finally:
        client.close()
        server.close()
    assert read == [("abc", None), (None, None)]  # read to its end, as sent (the usage chunk hidden)
    first, second = traced.records()
    assert (first["level"], first["usage"]) == ("DEFAULT", None)  # its usage left unread: not waited for
    assert (second["level"], second["usage"]["total"]) == ("DEFAULT", 13)
    assert autotrace.stats().get("openai.stream_trailing_timeout", 0) == 0
    assert autotrace.stats()["openai.stream_trailing_unread"] == 1
