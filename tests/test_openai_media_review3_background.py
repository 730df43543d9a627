"""Background Responses polled through raw responses (``with_raw_response`` to read the headers,
``with_streaming_response``): the reply is recorded, once, when the caller parses a fetch that
finds it finished, as for a plain ``retrieve``; a raw fetch never parsed records nothing and leaves
the reply to a later fetch."""

from __future__ import annotations

import gc
from typing import Any

import openai
import pytest

import autotrace
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")


def _finished(traced: Traced) -> list[dict[str, Any]]:
    return [r for r in traced.records() if r["name"] == "openai.responses.background"]


def test_a_reply_polled_with_raw_responses_is_recorded_when_parsed(traced: Traced, client: openai.OpenAI,
                                                                   fake: FakeOpenAI) -> None:
    fake.background_polls = 1
    fake.script(reply="shipped", usage=(1000, 100))
    with autotrace.start_span("checkout") as root:
        queued = client.responses.create(model="gpt-4.1", input="where is it", background=True)
    polled = client.responses.with_raw_response.retrieve(queued.id)
    assert (polled.headers["x-request-id"].startswith("req_"), polled.parse().status) == (True, "in_progress")
    unread = client.responses.with_raw_response.retrieve(queued.id)  # finished, but never parsed
    assert _finished(traced) == []
    with client.responses.with_streaming_response.retrieve(queued.id) as streamed:
        reply = streamed.parse()
    assert (reply.status, reply.output_text, streamed.parse() is reply) == ("completed", "shipped", True)
    assert unread.parse().output_text == "shipped"  # parsed later: recorded already
    (finished,) = _finished(traced)
    assert (finished["trace_id"], finished["output"], finished["usage"]["total"]) == (root.trace_id, "shipped", 1100)
    assert finished["metadata"]["finish_reason"] == "completed"


def test_a_raw_cancel_is_recorded_and_an_unparsed_fetch_leaves_it_to_the_next(traced: Traced, client: openai.OpenAI,
                                                                              fake: FakeOpenAI) -> None:
    fake.background_polls = 5
    queued = client.responses.create(model="gpt-4.1", input="x", background=True)
    with client.responses.with_streaming_response.cancel(queued.id) as cancelled:
        assert cancelled.status_code == 200  # read, never parsed
    del cancelled
    gc.collect()
    assert _finished(traced) == []
    assert client.responses.with_raw_response.cancel(queued.id).parse().status == "cancelled"
    (finished,) = _finished(traced)
    assert client.responses.retrieve(queued.id).status == "cancelled"
    assert len(_finished(traced)) == 1  # recorded once
    assert (finished["metadata"]["finish_reason"], finished["usage"], finished["output"]) == ("cancelled", None, None)


async def test_an_async_reply_polled_with_raw_responses_is_recorded_when_parsed(
        traced: Traced, aclient: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.background_polls = 0
    fake.script(reply="done", usage=(10, 2))
    queued = await aclient.responses.create(model="gpt-4.1", input="x", background=True)
    async with aclient.responses.with_streaming_response.retrieve(queued.id) as streamed:
        assert (await streamed.parse()).status == "completed"
    raw = await aclient.responses.with_raw_response.retrieve(queued.id)
    assert raw.parse().output_text == "done"
    (finished,) = _finished(traced)
    assert (finished["output"], finished["usage"]["total"]) == ("done", 12)
