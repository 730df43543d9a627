"""OpenAI calls under cancellation, timeouts and abandonment (real SDK, loopback server): each
ends its generation exactly once, WARNING (interrupted, not failed) with what it had, in its
tenant, and the cancellation reaches the caller as the same object; ``with_streaming_response``
blocks end their observation as they are left."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import openai
import pytest

import autotrace
from autotrace.observation import STREAM_CLOSED
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "user", "content": "tell me"}]


class HeldFake(FakeOpenAI):
    """A fake whose streams send their first ``before`` events, then wait for ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.before = 2

    def _send_stream(self, handler: Any, events: Iterator[Any]) -> None:  # type: ignore[override]
        release, before = self.release, self.before

        def held() -> Iterator[Any]:
            for index, event in enumerate(events):
                if index == before:
                    release.wait(10)
                yield event

        FakeOpenAI._send_stream(handler, held())


@pytest.fixture
def held() -> Iterator[HeldFake]:
    with HeldFake() as server:
        yield server
        server.release.set()


def _client(server: FakeOpenAI, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", **{"max_retries": 0, **options})


def _only(traced: Traced) -> dict[str, Any]:
    records = traced.records()
    assert len(records) == 1, [(r["name"], r["level"]) for r in records]
    return records[0]


def _ended(record: dict[str, Any]) -> tuple[Any, ...]:
    return record["type"], record["name"], record["tenant"], record["level"], record["status_message"], record["output"]


async def _cancelled_while(read: Callable[[list[Any]], Awaitable[None]], got: list[Any], pieces: int) -> None:
    """Run ``read`` as a task, cancel it once it has ``pieces`` pieces, and check that the
    cancellation reaches the caller as the same object, with no task left behind."""
    seen: list[BaseException] = []

    async def task() -> None:
        try:
            await read(got)
        except asyncio.CancelledError as error:
            seen.append(error)
            raise

    running = asyncio.create_task(task())
    while len(got) < pieces:
        await asyncio.sleep(0.005)
    running.cancel()
    with pytest.raises(asyncio.CancelledError) as raised:
        await running
    assert seen == [raised.value]
    assert asyncio.all_tasks() == {asyncio.current_task()}


# -- with_streaming_response: ended as its block is left ------------------------------------------

def test_streaming_response_read_raw_and_cancelled_ends_warning_at_once(traced: Traced, held: HeldFake) -> None:
    responses: list[Any] = []  # kept: the observation must not wait for the response to be freed

    async def read(got: list[Any]) -> None:
        async with _client(held).chat.completions.with_streaming_response.create(
                model="gpt-4o", messages=MESSAGES, stream=True) as response:
            responses.append(response)
            async for line in response.iter_lines():
                got.append(line)

    with autotrace.tenant("acme"):
        asyncio.run(_cancelled_while(read, [], 2))
    assert _ended(_only(traced)) == ("generation", "openai.chat", "acme", "WARNING", "CancelledError", None)
    assert responses


def test_sync_streaming_response_interrupted_ends_warning_at_once(traced: Traced, held: HeldFake) -> None:
    client = openai.OpenAI(base_url=held.base_url, api_key="sk-test", max_retries=0)
    interrupt = KeyboardInterrupt()
    with autotrace.tenant("acme"), pytest.raises(KeyboardInterrupt) as raised:
        with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=MESSAGES,
                                                                    stream=True) as response:
            for _line in response.iter_lines():
                raise interrupt
    assert raised.value is interrupt
    assert _ended(_only(traced)) == ("generation", "openai.chat", "acme", "WARNING", "KeyboardInterrupt", None)
    assert response.http_response.is_closed


def test_streaming_response_parsed_stream_ends_with_its_block(traced: Traced, held: HeldFake) -> None:
    kept: list[Any] = []  # the stream itself stays referenced: it ends with the block, not when freed

    async def main() -> None:
        async with _client(held).chat.completions.with_streaming_response.create(
                model="gpt-4o", messages=MESSAGES, stream=True) as response:
            stream = await response.parse()
            kept.append(stream)
            await stream.__anext__()

    with autotrace.tenant("acme"):
        asyncio.run(main())
    assert _ended(_only(traced)) == ("generation", "openai.chat", "acme", "WARNING", STREAM_CLOSED,
                                     {"role": "assistant", "content": None})


def test_streaming_response_parsed_stream_cancelled_outside_its_reads(traced: Traced, held: HeldFake) -> None:
    kept: list[Any] = []

    async def read(got: list[Any]) -> None:
        async with _client(held).chat.completions.with_streaming_response.create(
                model="gpt-4o", messages=MESSAGES, stream=True) as response:
            stream = await response.parse()
            kept.append(stream)
            got.append(await stream.__anext__())
            got.append(await stream.__anext__())
            await asyncio.sleep(30)  # cancelled here, between two reads of the stream

    with autotrace.tenant("acme"):
        asyncio.run(_cancelled_while(read, [], 2))
    assert _ended(_only(traced)) == ("generation", "openai.chat", "acme", "WARNING", "CancelledError",
                                     {"role": "assistant", "content": "ec"})


def test_streaming_response_read_whole_then_parsed_after_its_block(traced: Traced, held: HeldFake) -> None:
    """Left normally (no interruption), an unparsed response still waits for its parse."""

    async def main() -> Any:
        async with _client(held).chat.completions.with_streaming_response.create(
                model="gpt-4o", messages=MESSAGES) as response:
            await response.read()
        return await response.parse()

    completion = asyncio.run(main())
    record = _only(traced)
    assert (record["level"], record["output"]) == ("DEFAULT", {"role": "assistant", "content": "echo: tell me"})
    assert completion.choices[0].message.content == "echo: tell me"


# -- every async entry point, cancelled: one WARNING generation with what it had ------------------

async def _chat(client: openai.AsyncOpenAI, got: list[Any]) -> None:
    async for chunk in await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
        got.append(chunk)


async def _chat_helper(client: openai.AsyncOpenAI, got: list[Any]) -> None:
    async with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        async for event in stream:  # its text's pieces: a chunk gives more events than one
            if event.type == "content.delta":
                got.append(event)


async def _raw_chat(client: openai.AsyncOpenAI, got: list[Any]) -> None:
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES, stream=True)
    async for chunk in raw.parse():
        got.append(chunk)


async def _responses(client: openai.AsyncOpenAI, got: list[Any]) -> None:
    async with client.responses.stream(model="gpt-4o", input="tell me") as stream:
        async for event in stream:  # its text's pieces (``_cancelled_while`` counts them)
            if event.type == "response.output_text.delta":
                got.append(event)


async def _transcription(client: openai.AsyncOpenAI, got: list[Any]) -> None:
    stream = await client.audio.transcriptions.create(model="gpt-4o-transcribe", stream=True,
                                                      file=("a.wav", b"RIFF0000WAVEfmt "))
    async for event in stream:
        got.append(event)


@pytest.mark.parametrize(("read", "before", "pieces", "expected"), [  # pieces: all the server sends before it holds
    (_chat, 2, 2, ("generation", "openai.chat", {"role": "assistant", "content": "ec"})),
    (_chat_helper, 2, 2, ("generation", "openai.chat", {"role": "assistant", "content": "ec"})),
    (_raw_chat, 2, 2, ("generation", "openai.chat", {"role": "assistant", "content": "ec"})),
    (_responses, 4, 1, ("generation", "openai.responses", "ec")),
    (_transcription, 2, 2, ("generation", "openai.audio.transcriptions", "transcr")),
])
def test_stream_cancelled_midway_keeps_what_it_had(traced: Traced, held: HeldFake, read: Any, before: int,
                                                   pieces: int, expected: tuple[Any, ...]) -> None:
    held.before = before
    client = _client(held)

    async def reading(got: list[Any]) -> None:
        await read(client, got)

    with autotrace.tenant("acme"):
        asyncio.run(_cancelled_while(reading, [], pieces))
    record = _only(traced)
    assert (record["type"], record["name"], record["output"]) == expected
    assert (record["tenant"], record["level"], record["status_message"]) == ("acme", "WARNING", "CancelledError")


@pytest.mark.parametrize(("call", "expected"), [
    (lambda c: c.chat.completions.create(model="gpt-4o", messages=MESSAGES), ("generation", "openai.chat")),
    (lambda c: c.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True),
     ("generation", "openai.chat")),
    (lambda c: c.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES),
     ("generation", "openai.chat")),
    (lambda c: c.responses.create(model="gpt-4o", input="x"), ("generation", "openai.responses")),
    (lambda c: c.embeddings.create(model="text-embedding-3-small", input="x"), ("embedding", "openai.embeddings")),
])
def test_timed_out_before_the_reply(traced: Traced, held: HeldFake, call: Any, expected: tuple[str, str]) -> None:
    held.delay(2.0)

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(call(_client(held)), 0.1)

    with autotrace.tenant("acme"):
        asyncio.run(main())
    held.delay(0)
    assert shape(traced.records()) == [(*expected, [])]
    assert _ended(_only(traced))[2:] == ("acme", "WARNING", "CancelledError", None)


def test_cancelled_between_the_sdks_retries(traced: Traced, held: HeldFake) -> None:
    for _ in range(4):
        held.script(error=(500, "busy"))

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_client(held, max_retries=3).chat.completions.create(
                model="gpt-4o", messages=MESSAGES), 0.2)

    asyncio.run(main())
    assert len(held.requests) == 1  # cancelled in the SDK's back-off before its first retry (at least 0.375 s)
    assert _ended(_only(traced))[3:] == ("WARNING", "CancelledError", None)


def test_the_sdks_own_timeout_is_a_failure(traced: Traced, held: HeldFake) -> None:
    held.delay(1.0)

    async def main() -> None:
        with pytest.raises(openai.APITimeoutError):
            await _client(held).with_options(timeout=0.1).chat.completions.create(model="gpt-4o", messages=MESSAGES)

    asyncio.run(main())
    held.delay(0)
    record = _only(traced)
    assert record["level"] == "ERROR" and record["status_message"].startswith("APITimeoutError: Request timed out.")


@pytest.mark.parametrize("how", ["break", "next"])
def test_stream_left_at_its_first_chunk_when_the_loop_ends(traced: Traced, held: HeldFake, how: str) -> None:
    async def main() -> None:
        stream = await _client(held).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        if how == "next":
            await stream.__anext__()
        else:
            async for _chunk in stream:
                break

    with autotrace.tenant("acme"):
        asyncio.run(main())  # ends the loop with the stream open (its reply held back)
    gc.collect()  # the SDK's stream is in a reference cycle with its generator
    status = STREAM_CLOSED if how == "next" else "CancelledError"  # ``asyncio.run`` cancels the generator's aclose
    assert _ended(_only(traced)) == ("generation", "openai.chat", "acme", "WARNING", status,
                                     {"role": "assistant", "content": None})

