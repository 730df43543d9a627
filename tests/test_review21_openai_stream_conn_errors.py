"""A stream whose connection fails after some chunks (cut mid-event, a read timing out) raises the
SDK's ``APIConnectionError``/``APITimeoutError``, which say only "Connection error." / "Request
timed out.": the status of a failed request gave the cause (``_replayed.with_cause``), a stream's
did not. Real SDK over HTTP to loopback servers."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import openai
import pytest

from autotrace.testing._loopback import LoopbackServer
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]
CUT = ("APIConnectionError: Connection error. Cause: RemoteProtocolError: peer closed connection without sending "
       "complete message body (incomplete chunked read) (<IP_ADDRESS>:{port})")  # the store redacts addresses


class _CutServer(LoopbackServer):
    """Streams one chat chunk, then the start of another, and shuts the connection down."""

    def _handle(self, handler: Any) -> None:
        handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-08-06",
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}]}
        data = f"data: {json.dumps(chunk)}\n\n".encode()
        handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b'\r\nff\r\ndata: {"id"')
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)


def _status(record: dict[str, Any]) -> tuple[Any, ...]:
    return record["level"], record["status_message"], record["output"]


def test_a_stream_cut_mid_event_records_the_cause(traced: Traced) -> None:
    with _CutServer() as server:
        port = server.port
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
        seen = []
        with pytest.raises(openai.APIConnectionError) as raised:
            for chunk in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
                seen.append(chunk.choices[0].delta.content)
    assert seen == ["Hel"] and str(raised.value) == "Connection error."  # the caller's, unchanged
    assert _status(traced.one()) == ("ERROR", CUT.format(port=port), {"role": "assistant", "content": "Hel"})


def test_an_async_stream_cut_mid_event_records_the_cause(traced: Traced) -> None:
    async def main(url: str) -> None:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        async for _ in stream:
            pass

    with _CutServer() as server, pytest.raises(openai.APIConnectionError):
        port = server.port
        asyncio.run(main(server.url))
    assert _status(traced.one()) == ("ERROR", CUT.format(port=port), {"role": "assistant", "content": "Hel"})


def test_a_stream_read_timing_out_records_the_cause(traced: Traced, fake: FakeOpenAI) -> None:
    """The read of the usage event, sent late, times out: the reply so far and why it failed."""
    fake.script(reply="abc", chunks=3, usage_delay=1.0)
    slow = openai.OpenAI(base_url=fake.base_url, api_key="x", max_retries=0, timeout=0.2)
    with pytest.raises(openai.APITimeoutError):
        with slow.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as stream:
            for _ in stream:
                pass
    record = traced.one()
    assert _status(record) == ("ERROR", f"APITimeoutError: Request timed out. Cause: ReadTimeout: timed out "
                                        f"(<IP_ADDRESS>:{fake.port})", {"role": "assistant", "content": "abc"})
    assert record["metadata"]["finish_reason"] == "stop"
