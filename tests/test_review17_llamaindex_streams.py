"""A streaming query's chains (real llama-index-core query engine, MockLLM) end as the answer they
stream ends: read to its end, DEFAULT; closed by its reader before the end (``break``, ``close()``,
``aclose()``) or dropped unread, interrupted (WARNING), with the text read, as its generation is
and as every other stream autotrace records (LangChain's, ``observe``'s)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core import VectorStoreIndex

import autotrace
from autotrace.observation import STREAM_CLOSED
from tests.helpers import Traced
from tests.llama_doubles import indexed
from tests.test_llama_index import assert_nothing_held

pytestmark = pytest.mark.integrations("llama_index")


@pytest.fixture
def index() -> Iterator[VectorStoreIndex]:
    yield from indexed("Orders ship in 24 hours.", "Refunds take five days.")


def _levels(traced: Traced, trace_id: str) -> list[tuple[str, str, Any, Any]]:
    return [(r["name"], r["level"], r["status_message"], r["output"]) for r in traced.trace(trace_id)
            if r["type"] in ("chain", "generation") and r["parent_id"] is not None]


def test_a_streaming_query_cut_short_is_interrupted_and_one_read_to_its_end_is_not(index: VectorStoreIndex,
                                                                                  traced: Traced) -> None:
    """The chains of a query whose answer was cut short ended DEFAULT, as if the text read (or
    nothing, unread) were the whole answer."""
    engine = index.as_query_engine(streaming=True)
    with autotrace.start_chain("read") as read:
        assert "".join(engine.query("read").response_gen) == "text text text text"
    with autotrace.start_chain("closed") as closed:
        for token in engine.query("closed").response_gen:
            assert token == "text "
            break  # the generator is dropped here, as a loop's break leaves it
        gc.collect()
    with autotrace.start_chain("unread") as unread:
        engine.query("unread")
        gc.collect()

    async def aclosed() -> None:
        tokens = (await engine.aquery("aclosed")).async_response_gen()
        assert await tokens.__anext__() == "text "
        await tokens.aclose()

    with autotrace.start_chain("aclosed") as async_closed:
        asyncio.run(aclosed())
    assert _levels(traced, read.trace_id) == [
        ("RetrieverQueryEngine.query", "DEFAULT", None, "text text text text"),
        ("CompactAndRefine.synthesize", "DEFAULT", None, "text text text text"),
        ("MockLLM.stream_complete", "DEFAULT", None, "text text text text")]
    assert _levels(traced, closed.trace_id) == [
        ("RetrieverQueryEngine.query", "WARNING", STREAM_CLOSED, "text "),
        ("CompactAndRefine.synthesize", "WARNING", STREAM_CLOSED, "text "),
        ("MockLLM.stream_complete", "WARNING", STREAM_CLOSED, "text ")]
    assert _levels(traced, unread.trace_id) == [
        ("RetrieverQueryEngine.query", "WARNING", STREAM_CLOSED, ""),
        ("CompactAndRefine.synthesize", "WARNING", STREAM_CLOSED, "")]
    assert _levels(traced, async_closed.trace_id) == [
        ("RetrieverQueryEngine.aquery", "WARNING", STREAM_CLOSED, "text "),
        ("CompactAndRefine.asynthesize", "WARNING", STREAM_CLOSED, "text "),
        ("MockLLM.astream_complete", "WARNING", STREAM_CLOSED, "text ")]
    assert_nothing_held()
