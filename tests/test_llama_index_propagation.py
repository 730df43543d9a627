"""A LlamaIndex workflow whose steps run in another process carries the trace there: the
dispatcher's ``capture_propagation_context`` (where a run starts) and ``restore_propagation_context``
(before the run's first span, in the process that runs it), which llama-index-instrumentation 0.6
asks of every span handler. The child process is real; its spans go to its own local store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.instrumentation import get_dispatcher

import autotrace
from autotrace.export.local_store import LocalStore
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("llama_index")

_CHILD = r"""
import asyncio, json, sys
import autotrace
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import MockLLM
from llama_index.core.workflow import StartEvent, StopEvent, Workflow, step

class Answer(Workflow):
    @step
    async def answer(self, ev: StartEvent) -> StopEvent:
        reply = await MockLLM(max_tokens=3).acomplete(ev.question)
        return StopEvent(result=str(reply))

async def run_step(carried):  # as a workflow runtime's worker: restore in the run's own task
    get_dispatcher().restore_propagation_context(carried)
    return await Answer().run(question="where is my order")

autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=("llama_index",),
                  trust_incoming_tenant=sys.argv[2] == "trust")
print(asyncio.run(run_step(json.loads(sys.argv[3]))))
autotrace.shutdown()
"""


def _run_child(store: Path, trust: bool, carried: dict[str, Any]) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(store), "trust" if trust else "no", json.dumps(carried)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    child = LocalStore(store)
    try:
        return sorted(child.observations(), key=lambda r: (r["start_ns"], r["name"]))
    finally:
        child.close()


@pytest.mark.parametrize("trust", [True, False])
def test_a_workflow_run_in_another_process_joins_the_starting_trace(traced: Traced, tmp_path: Path,
                                                                    trust: bool) -> None:
    with autotrace.tenant("acme"), autotrace.start_span("handle-request") as request:
        carried = get_dispatcher().capture_propagation_context()
    assert carried == {"autotrace": {"traceparent": f"00-{request.trace_id}-{request.id}-01",
                                     "baggage": "autotrace.tenant=acme"}}
    records = _run_child(tmp_path / "child.db", trust, json.loads(json.dumps(carried)))
    assert shape(records) == [("chain", "Answer.run", [("chain", "Answer.answer", [("generation", "MockLLM.acomplete", [])])])]
    run, _, generation = records
    assert {r["trace_id"] for r in records} == {request.trace_id} and run["parent_id"] == request.id
    # the caller's tenant is taken as any caller's: only where the service trusts its callers
    assert {r["tenant"] for r in records} == {"acme" if trust else None}
    assert (generation["input"], generation["output"]) == ("where is my order", "text text text")


def test_nothing_is_carried_outside_a_trace_and_a_restore_of_nothing_valid_changes_nothing(traced: Traced) -> None:
    assert get_dispatcher().capture_propagation_context() == {}
    for carried in ({}, {"autotrace": "00-ab-cd-01"}, {"autotrace": {"traceparent": "not a traceparent"}},
                    {"autotrace": {"traceparent": "00-" + "0" * 32 + "-" + "1" * 16 + "-01"}}):
        get_dispatcher().restore_propagation_context(carried)
        with autotrace.start_span("after"):
            pass
    after = traced.records()
    assert [r["name"] for r in after] == ["after"] * 4 and all(r["parent_id"] is None for r in after)
    assert len({r["trace_id"] for r in after}) == 4  # each still a trace of its own
    assert autotrace.stats().get("internal_errors.llama_index.restore_context") is None


def test_a_restore_where_a_trace_is_current_keeps_it(traced: Traced) -> None:
    """The runtime ran the steps in the starting process (the steps inherit its context): the
    current trace stays, whatever the carried context names."""
    with autotrace.start_span("elsewhere") as other:
        carried = get_dispatcher().capture_propagation_context()
    with autotrace.start_span("here") as here:
        get_dispatcher().restore_propagation_context(carried)
        with autotrace.start_span("inside"):
            pass
    inside = next(r for r in traced.records() if r["name"] == "inside")
    assert (inside["trace_id"], inside["parent_id"]) == (here.trace_id, here.id) != (other.trace_id, other.id)


def test_a_restore_outside_an_asyncio_task_leaves_the_thread_as_it_was(traced: Traced) -> None:
    """Nothing would detach a context attached in a plain thread: its later, unrelated work would
    join the carried trace (under its tenant) for good."""
    with autotrace.tenant("acme"), autotrace.start_span("started"):
        carried = get_dispatcher().capture_propagation_context()
    get_dispatcher().restore_propagation_context(carried)  # this thread, no task
    with autotrace.start_span("unrelated"):
        pass
    unrelated = next(r for r in traced.records() if r["name"] == "unrelated")
    assert unrelated["parent_id"] is None and unrelated["tenant"] is None
