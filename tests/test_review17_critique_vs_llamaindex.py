"""Critique of this session's LlamaIndex work, through real llama-index-core workflows and LLMs: a
step's events holding many models (an ingestion's embedded nodes) are not dumped whole to be cut at
the value size limit, and an LLM's model parameters are read from its declared settings only."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import pytest
from llama_index.core.llms.mock import MockLLM
from llama_index.core.schema import TextNode
from llama_index.core.workflow import Event, StartEvent, StopEvent, Workflow, step

from autotrace import bounds
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("llama_index")


class CountedNode(TextNode):
    """A node counting how often it is dumped (a pydantic model like any node)."""

    dumps: ClassVar[int] = 0

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        type(self).dumps += 1
        return super().model_dump(**kwargs)


NODES = [CountedNode(id_=f"n{i}", text=f"chunk {i} " * 20, embedding=[0.25] * 1536) for i in range(1000)]


class Embedded(Event):
    nodes: list[TextNode]
    source: str


class Ingest(Workflow):
    @step
    async def embed(self, ev: StartEvent) -> Embedded:
        return Embedded(nodes=NODES, source="kb.pdf")

    @step
    async def store(self, ev: Embedded) -> StopEvent:
        return StopEvent(result=len(ev.nodes))


def test_a_step_event_of_many_embedded_nodes_is_not_dumped_whole(traced: Traced) -> None:
    """Every node (and its 1,536 floats) was dumped as the output of ``embed`` and again as the input
    of ``store``, 2,000 dumps (over a second of the event loop's time) for texts cut at 64 KB."""
    async def run() -> object:
        return await Ingest().run()

    CountedNode.dumps = 0
    assert asyncio.run(run()) == 1000
    assert CountedNode.dumps < 20
    records = {r["name"]: r for r in traced.records()}
    full = json.dumps({"nodes": [n.model_dump(mode="json", exclude_none=True) for n in NODES], "source": "kb.pdf"},
                      ensure_ascii=False)
    for recorded in (records["Ingest.embed"]["output"], records["Ingest.store"]["input"]):
        assert isinstance(recorded, str) and recorded.endswith(bounds.TRUNCATION_MARK)  # cut, as before
        head = recorded.removesuffix(bounds.TRUNCATION_MARK)
        assert len(head) > 60_000 and full.startswith(head)  # the same text as all nodes dumped give
    assert records["Ingest.store"]["metadata"]["input_event"] == "Embedded"


class Touchy(MockLLM):
    """An LLM with properties named like settings: one raising, one costly (counted)."""

    reads: ClassVar[int] = 0

    @property
    def top_p(self) -> float:
        raise RuntimeError("not configured")

    @property
    def seed(self) -> int:
        type(self).reads += 1
        return 7


def test_a_setting_that_raises_loses_no_other_and_properties_are_not_run_per_call(traced: Traced) -> None:
    """A property raising dropped every parameter (``model_parameters`` None); each of the eleven
    names was looked up on every call (a name a pydantic LLM lacks costs ~4 µs: ~60 µs a call),
    running the LLM's properties each time."""
    Touchy.reads = 0
    llm = Touchy(max_tokens=4)
    llm.complete("hi", temperature=0.5)
    llm.complete("again")
    assert [r["model_parameters"] for r in traced.records()] == [{"max_tokens": 4, "temperature": 0.5},
                                                                 {"max_tokens": 4}]
    assert Touchy.reads == 0
