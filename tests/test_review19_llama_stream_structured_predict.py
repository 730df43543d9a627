"""``llm.stream_structured_predict`` / ``astream_structured_predict`` (real llama-index-core, its LLM
calling a real OpenAI client over HTTP): LlamaIndex's span of the call ends as it returns the stream
of partial objects, before the model is called. Its model call was recorded alone, with no chain
holding the prompt's variables, the class asked for or the object made, as ``structured_predict``'s
has. Now it is that chain, open until the stream ends, with the model call under it."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from llama_index.core.prompts import PromptTemplate
from pydantic import BaseModel

import autotrace
from autotrace.integrations.llama_index import INTEGRATION
from autotrace.observation import STREAM_CLOSED
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape
from tests.llama_doubles import Flaky, OpenAIBacked

pytestmark = pytest.mark.integrations("llama_index", "openai")

PROMPT = PromptTemplate("A song about {topic}")


class Song(BaseModel):
    title: str


def assert_nothing_held() -> None:
    tracker = INTEGRATION.tracker
    assert tracker is not None
    assert not (tracker.open or tracker.skipped or tracker.streams)


def read(stream: Any) -> list[Any]:
    """Every object of a sync or async stream."""
    if not hasattr(stream, "__aiter__"):
        return list(stream)

    async def drain() -> list[Any]:
        return [item async for item in stream]

    return asyncio.run(drain())


def predict(llm: Any, prefix: str, topic: str) -> Any:
    """The stream ``(a)stream_structured_predict`` returns."""
    if prefix:
        return asyncio.run(llm.astream_structured_predict(Song, PROMPT, topic=topic))
    return llm.stream_structured_predict(Song, PROMPT, topic=topic)


@pytest.mark.parametrize("prefix", ["", "a"])
def test_a_streamed_structured_prediction_is_a_chain_over_its_model_call_ending_with_its_object(
        traced: Traced, fake: FakeOpenAI, prefix: str) -> None:
    fake.script(reply='{"title": "Cats"}', usage=(10, 4), chunks=3)
    llm = OpenAIBacked(base_url=fake.base_url)
    with autotrace.start_chain("request"):
        stream = predict(llm, prefix, "cats")
        songs = read(stream)
    assert songs[-1] == Song(title="Cats")  # the caller's objects, unchanged
    records = traced.records()
    assert shape(records) == [("chain", "request", [("chain", f"OpenAIBacked.{prefix}stream_structured_predict", [
        ("generation", f"OpenAIBacked.{prefix}stream_complete", [])])])]
    request, chain, generation = records
    assert {r["trace_id"] for r in records} == {request["trace_id"]}
    assert (chain["input"], chain["output"], chain["metadata"], chain["level"]) == (
        {"topic": "cats"}, {"title": "Cats"}, {"output_cls": "Song"}, "DEFAULT")
    assert (generation["output"], generation["usage"]["input"], generation["usage"]["output"]) == (
        '{"title": "Cats"}', 10, 4)
    assert generation["start_ns"] >= chain["start_ns"] and generation["end_ns"] <= chain["end_ns"]
    assert_nothing_held()


@pytest.mark.parametrize("prefix", ["", "a"])
def test_a_streamed_prediction_whose_model_fails_keeps_the_callers_error(traced: Traced, prefix: str) -> None:
    with pytest.raises(ConnectionError, match="connection reset mid-stream") as caught:
        read(predict(Flaky(), prefix, "cats"))
    records = traced.records()
    assert shape(records) == [("chain", f"Flaky.{prefix}stream_structured_predict", [
        ("generation", f"Flaky.{prefix}stream_complete", [])])]
    chain, generation = records
    assert (chain["level"], chain["status_message"]) == ("ERROR", f"ConnectionError: {caught.value}")
    assert generation["level"] == "ERROR"
    assert_nothing_held()


def test_a_streamed_prediction_closed_early_or_never_read_is_interrupted(traced: Traced, fake: FakeOpenAI) -> None:
    fake.script(reply='{"title": "Cats", "year": 1}', chunks=3)
    llm = OpenAIBacked(base_url=fake.base_url)
    stream = llm.stream_structured_predict(Song, PROMPT, topic="cats")
    partial = next(o for o in stream if o.title)  # its title read, not its end
    stream.close()
    unread = llm.stream_structured_predict(Song, PROMPT, topic="dogs")
    del unread
    gc.collect()
    records = traced.records()
    chains = [(r["input"], r["level"], r["status_message"]) for r in records if r["type"] == "chain"]
    assert chains == [({"topic": "cats"}, "WARNING", STREAM_CLOSED), ({"topic": "dogs"}, "WARNING", STREAM_CLOSED)]
    assert records[0]["output"] == partial.model_dump() == {"title": "Cats"}
    assert_nothing_held()


def test_uninstall_unwraps_the_streamed_predictions() -> None:
    from llama_index.core.llms.llm import LLM

    originals = {name: LLM.__dict__[name] for name in ("stream_structured_predict", "astream_structured_predict")}
    autotrace.install(local_store="off", integrations=("llama_index",))
    assert all(LLM.__dict__[name] is not original for name, original in originals.items())
    autotrace.uninstall(timeout=2.0)
    assert all(LLM.__dict__[name] is original for name, original in originals.items())
