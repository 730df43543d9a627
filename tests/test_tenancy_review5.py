"""Tenant blocks inside framework runs (review 5): LangChain and LlamaIndex parent a run by their own
run ids, not by the current span, so ``with autotrace.tenant(b):`` inside a run of tenant a's must
start b's run as a trace of its own there too (it went to a's project, counted as a mismatch)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import dispatch_custom_event
from langchain_core.runnables import RunnableLambda
from llama_index.core.llms.mock import MockLLM
from llama_index.core.tools import FunctionTool

import autotrace
from tests.helpers import Traced


def _seen(traced: Traced) -> list[tuple[str, str | None, bool, str | None]]:
    """(name, tenant, is a root, name of its parent) per observation, in start order."""
    records = traced.records()
    by_id = {r["id"]: r["name"] for r in records}
    roots = {r["trace_id"]: r["name"] for r in records if r["parent_id"] is None}
    assert all(r["trace_id"] in roots for r in records)
    return [(r["name"], r["tenant"], r["parent_id"] is None, by_id.get(r["parent_id"])) for r in records]


def _stats() -> dict[str, Any]:
    return {k: v for k, v in autotrace.stats().items() if k.startswith("tenant")}


@pytest.mark.integrations("langchain")
def test_a_langchain_run_in_another_tenants_block_is_that_tenants_own_trace(traced: Traced) -> None:
    """A step of acme's chain serving globex (``tenant("globex")``) runs a chain: that run, its
    custom event and its children are globex's trace; a run in a nested block of acme's own stays
    in acme's trace."""
    inner = RunnableLambda(lambda x: x + "!").with_config(run_name="inner")

    def served(x: str) -> str:
        dispatch_custom_event("note", {"x": x})
        return inner.invoke(x)

    served_chain = RunnableLambda(served).with_config(run_name="served")

    def step(x: str) -> str:
        with autotrace.tenant("globex"):
            theirs = served_chain.invoke(x)
        with autotrace.tenant("acme"):
            ours = inner.invoke(x)
        return theirs + ours

    with autotrace.tenant("acme"):
        RunnableLambda(step).with_config(run_name="outer").invoke("hi")
    assert _seen(traced) == [
        ("outer", "acme", True, None),
        ("served", "globex", True, None),
        ("note", "globex", False, "served"),
        ("inner", "globex", False, "served"),
        ("inner", "acme", False, "outer"),
    ]
    assert _stats() == {"tenant_new_trace": 1}


@pytest.mark.integrations("llama_index")
def test_a_llama_index_call_in_another_tenants_block_is_that_tenants_own_trace(traced: Traced) -> None:
    """An acme tool serving globex calls an LLM in ``tenant("globex")``: globex's own trace."""

    def lookup(q: str) -> str:
        """Look something up."""
        with autotrace.tenant("globex"):
            return MockLLM().complete(q).text

    with autotrace.tenant("acme"):
        FunctionTool.from_defaults(lookup).call(q="hi")
    assert _seen(traced) == [
        ("lookup", "acme", True, None),
        ("MockLLM.complete", "globex", True, None),
    ]
    assert _stats() == {"tenant_new_trace": 1}
