"""A sync retrieval interrupted (Ctrl-C in a notebook: ``KeyboardInterrupt``), for which LangChain
reports no end (its retrievers catch ``Exception`` only): its run ends as interrupted and stays
current nowhere, alone or as a chain's step."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from opentelemetry import trace

from autotrace.integrations.langchain import INTEGRATION
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain")


class _InterruptedRetriever(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        raise KeyboardInterrupt


def _levels(records: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(r["name"], r["level"], r["status_message"]) for r in records]


def test_an_interrupted_sync_retrieval_ends_interrupted_and_leaves_nothing_current(traced: Traced) -> None:
    with pytest.raises(KeyboardInterrupt):
        _InterruptedRetriever().invoke("q")
    assert not trace.get_current_span().get_span_context().is_valid
    with pytest.raises(KeyboardInterrupt):
        (RunnableLambda(lambda q: q, name="rewrite") | _InterruptedRetriever()).invoke("q")
    assert INTEGRATION.handler is not None and INTEGRATION.handler.runs == {}
    records = traced.records()
    assert shape(records) == [("retriever", "_InterruptedRetriever", []),
                              ("chain", "RunnableSequence", [("chain", "rewrite", []),
                                                             ("retriever", "_InterruptedRetriever", [])])]
    interrupted = ("WARNING", "KeyboardInterrupt")
    assert _levels(records) == [("_InterruptedRetriever", *interrupted), ("RunnableSequence", *interrupted),
                                ("rewrite", "DEFAULT", None), ("_InterruptedRetriever", *interrupted)]
