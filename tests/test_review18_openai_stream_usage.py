"""The usage autotrace asks for of a chat stream comes after the chunk with the finish reason: a
reader that stops at the finish reason, or a stream helper that raises on it, left it unread, and
the reply the API billed was recorded without usage or cost. Real SDK over HTTP to the loopback fake."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

import openai
import pytest
from pydantic import BaseModel

import autotrace
from autotrace.integrations.openai import _stream
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MESSAGES: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
USAGE = {"input": 9, "output": 4, "total": 13, "input_cached_tokens": 0, "output_reasoning_tokens": 0}
#: gpt-4o: 2.50 and 10 USD per 1M input and output tokens.
COST = {"input": 9 * 2.5 / 1e6, "output": 4 * 10.0 / 1e6, "total": 9 * 2.5 / 1e6 + 4 * 10.0 / 1e6}


class Weather(BaseModel):
    city: str
    temp: int


def _recorded(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record["level"], record["status_message"], record["usage"], record["cost"],
            record["metadata"]["finish_reason"])


def test_a_reader_that_stops_at_the_finish_reason_still_gets_its_usage_recorded(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply="abc", chunks=3, usage=(9, 4))
    seen = []
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    for chunk in stream:
        seen.append(chunk)
        if chunk.choices and chunk.choices[0].finish_reason:
            break
    fake.script(reply="abc", chunks=3, usage=(9, 4))
    with client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True) as closed:
        while not (chunk := next(closed)).choices[0].finish_reason:  # read with ``next``, then closed
            pass
    assert [c.choices[0].finish_reason for c in seen] == [None, None, None, None, "stop"]  # as sent, no usage chunk
    assert all(c.usage is None for c in seen)
    first, second = traced.records()
    assert _recorded(first) == _recorded(second) == ("DEFAULT", None, USAGE, COST, "stop")
    assert first["output"] == {"role": "assistant", "content": "abc"}
    assert fake.requests[0]["body"]["stream_options"] == {"include_usage": True}


def test_a_chat_stream_helper_that_raises_on_the_finish_reason_records_the_billed_usage(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """``chat.completions.stream(response_format=...)`` raises ``LengthFinishReasonError`` on the
    chunk with the finish reason, before the usage event: recorded as ``parse()`` records it."""
    fake.script(reply='{"city": "Pa', finish_reason="length", usage=(9, 4))
    with pytest.raises(openai.LengthFinishReasonError), client.chat.completions.stream(
            model="gpt-4o", messages=MESSAGES, response_format=Weather) as stream:
        stream.until_done()
    record = traced.one()
    assert _recorded(record)[2:] == (USAGE, COST, "length")
    assert record["level"] == "ERROR" and record["status_message"].startswith("LengthFinishReasonError")


def test_async_readers_and_helpers_that_stop_at_the_finish_reason_record_the_usage(
        traced: Traced, aclient: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    async def main() -> None:
        fake.script(reply="abc", chunks=3, usage=(9, 4))
        stream = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].finish_reason:
                    break
        fake.script(reply="abc", chunks=3, usage=(9, 4))
        left = await aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        async for chunk in left:  # never closed: its iteration is closed by the loop (``aclose``)
            if chunk.choices and chunk.choices[0].finish_reason:
                break
        found = _stream.tracking(left)
        for _ in range(1000):
            if found is None or found.done:
                break
            await asyncio.sleep(0.01)
        fake.script(reply='{"city": "Pa', finish_reason="length", usage=(9, 4))
        with pytest.raises(openai.LengthFinishReasonError):
            async with aclient.chat.completions.stream(model="gpt-4o", messages=MESSAGES,
                                                       response_format=Weather) as helper:
                await helper.until_done()
        fake.script(reply="abc", chunks=3, usage=(9, 4))
        async with aclient.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as helper:
            async for event in helper:
                if event.type == "content.done":
                    break
        await aclient.close()

    asyncio.run(main())
    broken, left, raised, helped = traced.records()
    assert _recorded(broken) == _recorded(left) == _recorded(helped) == ("DEFAULT", None, USAGE, COST, "stop")
    assert _recorded(raised)[2:] == (USAGE, COST, "length") and raised["level"] == "ERROR"


def test_a_reader_that_stops_before_the_reply_finished_reads_nothing_more(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply="abcdef", chunks=6, usage=(9, 4))
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()
    record = traced.one()
    assert (record["level"], record["usage"], record["output"]["content"]) == ("WARNING", None, "a")


def _stalling_server(release: threading.Event) -> tuple[socket.socket, threading.Thread]:
    """A loopback server answering one chat stream with its content and its finish reason, then
    sending nothing more until ``release``: a usage event that never comes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            for delta, finish in (({"role": "assistant", "content": "abc"}, None), ({}, "stop")):
                event = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                payload = f"data: {json.dumps(event)}\n\n".encode()
                conn.sendall(b"%x\r\n%s\r\n" % (len(payload), payload))
            release.wait(60)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def read_to_the_finish_of_a_stalling_server() -> list[Any]:
    """The finish reasons a reader that breaks at the finish reason saw of ``_stalling_server``'s
    stream; it fails if the reader was held (a liveness bound far above the trailing wait: no timing
    is asserted)."""
    release = threading.Event()
    listener, server = _stalling_server(release)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{listener.getsockname()[1]}/v1", api_key="k",
                           max_retries=0, timeout=120)
    seen: list[Any] = []

    def read() -> None:
        for chunk in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
            seen.append(chunk.choices[0].finish_reason)
            if chunk.choices[0].finish_reason:
                break

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(30)
    held = reader.is_alive()
    release.set()
    server.join(10)
    listener.close()
    client.close()
    assert not held, "the reader was held by the trailing read"
    return seen


def test_a_server_that_stalls_after_the_finish_reason_holds_the_reader_no_longer_than_a_moment(
        traced: Traced) -> None:
    """The trailing read is bounded: a reader that breaks at the finish reason is never held until
    the read timeout by a server that sends no usage event (the connection it left is shut)."""
    assert read_to_the_finish_of_a_stalling_server() == [None, "stop"]
    (record,) = traced.records()
    assert (record["level"], record["usage"], record["output"]) == (
        "DEFAULT", None, {"role": "assistant", "content": "abc"})
    assert autotrace.stats()["openai.stream_trailing_timeout"] == 1
