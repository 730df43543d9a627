"""LangGraph review 15 (real langgraph, fake models): an unnamed subgraph in a node whose name says
agent is a chain, as an unnamed one is in any node: the node's name names it, LangChain's rule
(its own name) types it."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage
from langgraph.graph import START, MessagesState, StateGraph

from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open, _react

pytestmark = pytest.mark.integrations("langchain")


def test_an_unnamed_subgraph_is_no_agent_for_its_nodes_name(traced: Traced) -> None:
    inner = StateGraph(MessagesState)
    inner.add_node("polish", lambda s: {"messages": [AIMessage(content="polished")]})
    inner.add_edge(START, "polish")
    supervisor = StateGraph(MessagesState)
    supervisor.add_node("research_agent", _react())
    supervisor.add_node("billing", _react("billing_agent"))
    supervisor.add_node("editor_agent", inner.compile())
    supervisor.add_edge(START, "research_agent")
    supervisor.add_edge("research_agent", "billing")
    supervisor.add_edge("billing", "editor_agent")
    out = supervisor.compile(name="supervisor").invoke({"messages": [("user", "o1?")]})
    assert out["messages"][-1].content == "polished"
    tree = shape(traced.records())
    assert [(node[1], node[2][0][:2]) for node in tree[0][2]] == [
        ("research_agent", ("chain", "research_agent")),  # was an agent, for its node's name
        ("billing", ("agent", "billing_agent")),  # named: an agent, by its own name
        ("editor_agent", ("chain", "editor_agent")),  # was an agent too
    ]
    assert tree[0][:2] == ("agent", "supervisor")
    _nothing_open()
