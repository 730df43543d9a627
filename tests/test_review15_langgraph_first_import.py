"""LangGraph review 15: an application whose first import is LangGraph's private runnables module
(which imports LangChain before it defines what autotrace patches in it) keeps a node's
``TracePolicy`` and the values its nodes write to their custom stream."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import isolated_env

_APP = """
import sys
import autotrace
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=("langchain",))
from langgraph._internal._runnable import RunnableCallable  # LangChain comes in halfway through it
from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph
from langgraph.types import TracePolicy, omit_payload

def secret(state):
    get_stream_writer()("step")
    return {"x": 1}

graph = StateGraph(dict)
graph.add_node("secret", secret, trace_policy=TracePolicy(process_inputs=omit_payload))
graph.add_edge(START, "secret")
graph.compile().invoke({"x": 0})
autotrace.flush(10.0)
print(sorted((r["name"], r["input"], r["metadata"].get("stream_custom"))
             for r in autotrace.local_store().observations()))
"""


@pytest.mark.parametrize("first", ["from langgraph._internal._runnable import RunnableCallable",
                                   "import langgraph._internal._runnable"])
def test_a_trace_policy_holds_with_langgraphs_runnables_imported_first(tmp_path: Path, first: str) -> None:
    env = isolated_env(tmp_path)
    app = _APP.replace("from langgraph._internal._runnable import RunnableCallable", first)
    done = subprocess.run([sys.executable, "-c", app, str(tmp_path / "t.db")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout) == (0, "[('LangGraph', {'x': 0}, None), ('secret', {}, ['step'])]\n"), \
        done.stderr
