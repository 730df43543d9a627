"""Autotrace's own LlamaIndex steps failing after an observation started (fifteenth review): the
agent-name tag, an agent's turn, a tool call's id, a streamed generation or response, a reranker's
async call. The call returns what it would untraced, every observation started ends (none is left
open for good, never exported), and the failure is counted. Only autotrace's functions are made to
raise; llama-index-core runs for real with its mock LLMs and embeddings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.embeddings.mock_embed_model import MockEmbedding
from llama_index.core.llms.mock import MockLLM

from autotrace.integrations import llama_index
from autotrace.integrations.llama_index import INTEGRATION, _rerank, _streams
from autotrace.integrations.llama_index._fields import end_fields
from autotrace.observation import Observation, ObservationType
from tests.helpers import Traced
from tests.llama_doubles import billing_desk, calls, indexed, lookup
from tests.test_faults_review4 import InternalBug, _raise
from tests.test_faults_review4_more import _internal_errors
from tests.test_llama_index_edges import Ranking

pytestmark = pytest.mark.integrations("llama_index")


def _nothing_held() -> bool:
    tracker = INTEGRATION.tracker
    assert tracker is not None
    return not (tracker.open or tracker.streams or tracker.delegates or tracker.chats or tracker.agents
                or tracker.tool_steps or tracker.turns)


def _update_failing(monkeypatch: pytest.MonkeyPatch, when: Callable[[Observation, dict[str, Any]], bool]) -> None:
    """``Observation.update`` raises for the calls ``when`` picks."""
    real_update = Observation.update

    def update(obs: Observation, **fields: Any) -> Observation:
        if when(obs, fields):
            raise InternalBug("autotrace bug")
        return real_update(obs, **fields)

    monkeypatch.setattr(Observation, "update", update)


def _metadata(key: str) -> Callable[[Observation, dict[str, Any]], bool]:
    return lambda obs, fields: key in (fields.get("metadata") or {}) and len(fields) == 1


def _turn_output_failing(obs_type: ObservationType, result: Any, instance: Any = None) -> dict[str, Any]:
    if obs_type is ObservationType.AGENT and instance is None:  # an agent's turn
        raise InternalBug("autotrace bug")
    return end_fields(obs_type, result, instance)


# -- an agent workflow ------------------------------------------------------------------------------
RUN = ["AgentWorkflow.run", "MockFunctionCallingLLM.astream_chat", "MockFunctionCallingLLM.astream_chat",
       "MockFunctionCallingLLM.astream_chat", "billing", "handoff", "lookup", "triage"]
#: (what is made to fail, the observations recorded, what is counted)
AGENT_STEPS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], list[str], dict[str, int]]] = {
    # the agent-name tag of each generation and tool: 3 generations and 2 tools were left open
    "agent_name": (lambda mp: _update_failing(mp, lambda obs, fields: _metadata("agent_name")(obs, fields)
                                              and obs.type.value in ("generation", "tool")),
                   RUN, {"llama_index.new_span": 5}),
    # an agent's turn: both turns were left open
    "turn": (lambda mp: _update_failing(mp, lambda obs, fields: _metadata("agent_name")(obs, fields)
                                        and obs.type.value == "agent" and obs.name in ("triage", "billing")),
             RUN, {"llama_index.turn": 2}),
    # a tool call's id: both tools were left open
    "tool_call_id": (lambda mp: _update_failing(mp, _metadata("tool_call_id")), RUN, {"llama_index.new_span": 2}),
    # telling an AgentWorkflow's run: the run was left open (its steps then recorded flat under it)
    "multi_agent": (lambda mp: mp.setattr(llama_index, "multi_agent", _raise),
                    [n for n in RUN if n not in ("billing", "triage")], {"llama_index.new_span": 1}),
    # the reply of the turn the run's end ends: the run was left open, and current where it ran
    "turn_output": (lambda mp: mp.setattr(llama_index, "end_fields", _turn_output_failing), RUN,
                    {"llama_index.exit_span": 1}),
}


@pytest.mark.parametrize("case", AGENT_STEPS)
def test_an_agent_workflow_step_failing_ends_every_observation_it_started(
        traced: Traced, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    fail, names, counted = AGENT_STEPS[case]
    workflow = billing_desk(calls("lookup", order_id="o1"), ChatMessage(role="assistant", content="ok"), tools=[lookup])

    async def run() -> str:
        return str(await workflow.run(user_msg="refund o1"))

    fail(monkeypatch)
    assert asyncio.run(run()) == "ok"
    monkeypatch.undo()
    assert sorted(r["name"] for r in traced.records()) == names
    assert _nothing_held()
    assert _internal_errors() == counted


def test_a_tool_call_no_tool_ran_whose_fields_cannot_be_recorded_still_ends(
        traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tool the model made up, recorded when its step ends: recording its fields failed, and it is
    still ended (it was left open)."""
    workflow = billing_desk(calls("lookupp", order_id="o1"), ChatMessage(role="assistant", content="b"),
                            tools=[lookup])

    async def run() -> str:
        return str(await workflow.run(user_msg="refund o1"))

    _update_failing(monkeypatch, lambda obs, fields: "tool_name" in fields and obs.name == "lookupp")
    assert asyncio.run(run()) == "b"
    monkeypatch.undo()
    assert "lookupp" in [r["name"] for r in traced.records()]
    assert _nothing_held()
    assert _internal_errors() == {"llama_index.exit_span": 1}


# -- streams ----------------------------------------------------------------------------------------
@pytest.fixture
def index() -> Iterator[VectorStoreIndex]:
    yield from indexed("Orders ship in 24 hours.", "Refunds take five days.")


STREAMED = ["CompactAndRefine.synthesize", "MockEmbedding.get_query_embedding", "MockLLM.stream_complete",
            "RetrieverQueryEngine.query", "VectorIndexRetriever.retrieve"]
#: (what is made to fail, what is counted)
STREAM_STEPS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], dict[str, int]]] = {
    # following the returned stream: the generation was left open
    "follow": (lambda mp: mp.setattr(_streams, "method_of", _raise), {"llama_index.exit_span": 1}),
    # the streamed generation's text: it was left open
    "streamed_output": (lambda mp: mp.setattr(_streams, "streamed_output", _raise), {"llama_index.event": 1}),
    # the chains' streamed text: the two chains were left open
    "response_text": (lambda mp: _update_failing(mp, lambda obs, fields: set(fields) == {"output"}
                                                 and obs.type.value == "chain"),
                      {"llama_index.response_ended": 2}),
}


@pytest.mark.parametrize("case", STREAM_STEPS)
def test_a_streaming_query_step_failing_ends_every_observation_it_started(
        index: VectorStoreIndex, traced: Traced, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    fail, counted = STREAM_STEPS[case]
    fail(monkeypatch)
    response = index.as_query_engine(streaming=True).query("stream it")
    text = "".join(response.response_gen)
    monkeypatch.undo()
    assert text == "".join(index.as_query_engine(streaming=True).query("stream it").response_gen)
    records = traced.records()
    assert sorted(r["name"] for r in records if r["trace_id"] == records[0]["trace_id"]) == STREAMED
    assert _nothing_held()
    assert _internal_errors() == counted


# -- a reranker's async call ------------------------------------------------------------------------
def test_a_rerank_whose_arguments_cannot_be_read_returns_the_reranked_nodes(
        traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading an ``apostprocess_nodes`` call's arguments failed: the query gets the reranked nodes
    (the failure was raised in its stead, and the reranker's coroutine never awaited)."""
    from llama_index.core.postprocessor import LLMRerank

    Settings.embed_model, previous = MockEmbedding(embed_dim=8), Settings._embed_model
    try:
        index = VectorStoreIndex.from_documents([Document(text="Orders ship in 24 hours.", doc_id="d1"),
                                                 Document(text="Refunds take five days.", doc_id="d2")])
        engine = index.as_query_engine(similarity_top_k=2, llm=MockLLM(max_tokens=4), node_postprocessors=[
            LLMRerank(llm=Ranking(), top_n=1, choice_batch_size=5)])
        monkeypatch.setattr(_rerank, "_arguments", _raise)
        response = asyncio.run(engine.aquery("refunds?"))
    finally:
        Settings._embed_model = previous
    monkeypatch.undo()
    assert [n.node.text for n in response.source_nodes] == ["Refunds take five days."]
    assert _nothing_held()
    assert _internal_errors() == {"llama_index.rerank": 1}

