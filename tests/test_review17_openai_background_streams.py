"""Background Responses streams (``background=True, stream=True``) that stop before their final
event and are resumed by the response's id (``responses.retrieve(id, stream=True,
starting_after=N)``, ``responses.stream(response_id=...)``) or polled, and background responses
retrieved as a stream: the reply's output, usage and cost are recorded once, under the generation
that created it. Real SDK over HTTP to the loopback fake."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import openai
import pytest

import autotrace
from autotrace.observation import STREAM_CLOSED
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

USAGE = {"input": 1000, "output": 100, "total": 1100, "input_cached_tokens": 0, "output_reasoning_tokens": 0}


def _interrupted(client: openai.OpenAI) -> tuple[str, int, str]:
    """A background stream read to its first text delta, then closed: (response id, the last
    sequence number read, the text read)."""
    stream = client.responses.create(model="gpt-4.1", input="where is it", background=True, stream=True)
    response_id, last, text = "", -1, ""
    for event in stream:
        last = event.sequence_number
        if event.type == "response.created":
            response_id = event.response.id
        elif event.type == "response.output_text.delta":
            text += event.delta
            break
    stream.close()
    return response_id, last, text


def _resume(client: openai.OpenAI, how: str, response_id: str, last: int) -> str:
    """The rest of the reply, as ``how`` fetches it."""
    if how == "retrieve_stream":
        return "".join(e.delta for e in client.responses.retrieve(response_id, stream=True, starting_after=last)
                       if e.type == "response.output_text.delta")
    if how == "stream_helper":
        with client.responses.stream(response_id=response_id, starting_after=last) as stream:
            return "".join(e.delta for e in stream if e.type == "response.output_text.delta")
    response = client.responses.retrieve(response_id)  # a poll
    assert response.status == "completed"
    return ""


def _records(traced: Traced) -> dict[str, dict[str, Any]]:
    records = traced.records()
    found = {record["name"]: record for record in records}
    assert len(found) == len(records), [record["name"] for record in records]
    return found


@pytest.mark.parametrize("how", ["retrieve_stream", "stream_helper", "poll"])
def test_an_interrupted_background_stream_resumed_records_its_reply_once(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI, how: str) -> None:
    """The stream's generation ends interrupted, without usage (none came); the response ran on
    and billed: its reply, usage and cost are one generation under it, in the creating call's
    trace and tenant, when the resumed stream (or a poll) finds it finished."""
    fake.background_polls = 0  # a poll finds it finished
    fake.script(reply="shipped on Monday", usage=(1000, 100), model="gpt-4.1-2025-04-14", chunks=3)
    with autotrace.tenant("acme"), autotrace.start_span("checkout") as root:
        response_id, last, first = _interrupted(client)
    rest = _resume(client, how, response_id, last)
    if how != "poll":
        assert first + rest == "shipped on Monday"
        assert fake.requests[-1]["path"] == f"/v1/responses/{response_id}"
    found = _records(traced)
    assert sorted(found) == ["checkout", "openai.responses", "openai.responses.background"]
    creating, finished = found["openai.responses"], found["openai.responses.background"]
    assert (creating["level"], creating["status_message"], creating["usage"]) == ("WARNING", STREAM_CLOSED, None)
    assert (finished["type"], finished["trace_id"], finished["parent_id"], finished["tenant"]) == (
        "generation", root.trace_id, creating["id"], "acme")
    assert (finished["model"], finished["output"], finished["level"]) == (
        "gpt-4.1-2025-04-14", "shipped on Monday", "DEFAULT")
    assert finished["usage"] == USAGE
    assert finished["cost"] == pytest.approx({"input": 0.002, "output": 0.0008, "total": 0.0028})
    assert finished["metadata"]["response_id"] == response_id == "resp_bg_1"
    _resume(client, "retrieve_stream", response_id, last)  # fetched again: nothing more
    assert len(traced.records()) == 3


def test_a_background_stream_read_to_its_end_is_one_generation(traced: Traced, client: openai.OpenAI,
                                                               fake: FakeOpenAI) -> None:
    """Finished in the stream itself: nothing is left to fetch; a later retrieval records nothing."""
    fake.script(reply="done", usage=(1000, 100), chunks=2)
    events = list(client.responses.create(model="gpt-4.1", input="x", background=True, stream=True))
    assert (events[0].response.status, events[-1].type) == ("queued", "response.completed")
    assert [e.type for e in client.responses.retrieve(events[0].response.id, stream=True)][-1] == (
        "response.completed")
    assert client.responses.retrieve(events[0].response.id).status == "completed"
    record = traced.one()
    assert (record["name"], record["usage"], record["output"]) == ("openai.responses", USAGE, "done")


def test_a_background_response_retrieved_as_a_stream_records_its_reply(
        traced: Traced, aclient: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    """Created unstreamed, then followed as a stream (async client): the stream's final event is
    the reply fetched."""

    async def run() -> str:
        queued = await aclient.responses.create(model="gpt-4.1", input="x", background=True)
        stream = await aclient.responses.retrieve(queued.id, stream=True)
        return "".join([e.delta async for e in stream if e.type == "response.output_text.delta"])

    fake.script(reply="shipped on Monday", usage=(1000, 100), chunks=2)
    assert asyncio.run(run()) == "shipped on Monday"
    found = _records(traced)
    creating, finished = found["openai.responses"], found["openai.responses.background"]
    assert (creating["usage"], creating["metadata"]["finish_reason"]) == (None, "queued")
    assert (finished["parent_id"], finished["output"], finished["usage"]) == (creating["id"], "shipped on Monday",
                                                                             USAGE)


def test_a_dropped_background_stream_is_resumed_in_its_creating_context(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """A stream left unclosed ends when the collector frees it, wherever that is: the reply's
    generation still goes under the creating call, with its tenant (taken when the stream began)."""
    fake.script(reply="shipped on Monday", usage=(1000, 100), chunks=3)
    with autotrace.tenant("acme"):
        stream = client.responses.create(model="gpt-4.1", input="x", background=True, stream=True)
        created = next(stream)  # its iteration is the stream's own: it ends when the stream is freed
    with autotrace.tenant("globex"):
        del stream
        gc.collect()
        _resume(client, "retrieve_stream", created.response.id, created.sequence_number)
    found = _records(traced)
    creating, finished = found["openai.responses"], found["openai.responses.background"]
    assert (creating["tenant"], creating["level"]) == ("acme", "WARNING")
    assert (finished["parent_id"], finished["tenant"], finished["usage"]) == (creating["id"], "acme", USAGE)
