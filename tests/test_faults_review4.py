"""Autotrace's own internals failing during a real call (fourth review): the call returns or raises
exactly what it would untraced, the failure is counted (``internal_errors.*``), and the observation
started for it still ends (none is left open for good). Only autotrace's functions are made to
raise; the libraries run for real (the loopback OpenAI fake, in-memory Qdrant, langchain-core)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import VectorStore
from qdrant_client import QdrantClient, models

import autotrace
from autotrace.integrations.openai import _extract
from autotrace.observation import Observation
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai", "qdrant", "langchain")

MESSAGES = [{"role": "user", "content": "hi"}]


class InternalBug(RuntimeError):
    """What autotrace's broken internals raise in these tests (never the library's error)."""


def _raise(*args: Any, **kwargs: Any) -> Any:
    raise InternalBug("autotrace bug")


def _qdrant() -> QdrantClient:
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE))
    return client


class _BrokenStore(VectorStore):
    """A LangChain store whose search fails (the library's error the caller must get)."""

    def add_texts(self, texts: Any, metadatas: Any = None, **kwargs: Any) -> list[str]:
        return []

    @classmethod
    def from_texts(cls, texts: Any, embedding: Any, metadatas: Any = None, **kwargs: Any) -> _BrokenStore:
        return cls()

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        raise LookupError("index offline")


def _openai_fails(fake: FakeOpenAI, client: openai.OpenAI) -> Any:
    fake.script(error=(503, "overloaded"))
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def _qdrant_search_fails(fake: FakeOpenAI, client: openai.OpenAI) -> Any:
    return _qdrant().query_points("missing", query=[1.0, 0.0, 0.0])


def _qdrant_write_fails(fake: FakeOpenAI, client: openai.OpenAI) -> Any:
    return _qdrant().upsert("missing", points=[models.PointStruct(id=1, vector=[1.0, 0.0, 0.0])])


def _langchain_search_fails(fake: FakeOpenAI, client: openai.OpenAI) -> Any:
    return _BrokenStore().similarity_search("q")


Call = Callable[[FakeOpenAI, openai.OpenAI], Any]
FAILING_CALLS: dict[str, tuple[Call, type[BaseException], str, dict[str, int]]] = {
    "openai": (_openai_fails, openai.InternalServerError, "openai.chat", {"openai.response": 1}),
    "qdrant.search": (_qdrant_search_fails, ValueError, "qdrant.query_points", {"exited": 1}),
    "qdrant.write": (_qdrant_write_fails, ValueError, "qdrant.upsert", {"record_error": 1}),
    "langchain.store": (_langchain_search_fails, LookupError, "_BrokenStore.similarity_search", {"exited": 1}),
}


@pytest.mark.parametrize("case", sorted(FAILING_CALLS))
def test_a_raising_record_error_leaves_the_callers_error_as_the_library_raised_it(
        traced: Traced, fake: FakeOpenAI, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """Recording the library's error failed: the caller still gets the library's error (not
    autotrace's, which replaced it), the failure is counted, and the observation ends."""
    call, error, name, counted = FAILING_CALLS[case]
    monkeypatch.setattr(Observation, "record_error", _raise)
    with pytest.raises(error) as raised:
        call(fake, client)
    assert not isinstance(raised.value, InternalBug)
    monkeypatch.undo()
    assert [r["name"] for r in traced.records()] == [name]
    assert {k.removeprefix("internal_errors."): v for k, v in autotrace.stats().items()
            if k.startswith("internal_errors.")} == counted


def _openai_call(fake: FakeOpenAI, client: openai.OpenAI) -> Any:
    fake.script(reply="hello", usage=(3, 1))
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices[0].message.content


class _Store(_BrokenStore):
    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [Document(page_content="doc")]


def _langchain_search(fake: FakeOpenAI, client: openai.OpenAI) -> Any:
    return _Store().similarity_search("q")


def _langchain_embed(fake: FakeOpenAI, client: openai.OpenAI) -> Any:
    return len(DeterministicFakeEmbedding(size=2).embed_query("q"))


def _qdrant_write(fake: FakeOpenAI, client: openai.OpenAI) -> Any:
    return _qdrant().upsert("kb", points=[models.PointStruct(id=1, vector=[1.0, 0.0, 0.0])]).status


LEAKS: dict[str, tuple[Any, str, Call, Any, str, dict[str, int]]] = {
    "openai.request_fields": (_extract, "request_fields", _openai_call, "hello", "openai.chat", {"openai.prepare": 1}),
    "qdrant.write.update": (Observation, "update", _qdrant_write, models.UpdateStatus.COMPLETED, "qdrant.upsert",
                            {"qdrant.write": 1}),
    "langchain.store.update": (Observation, "update", _langchain_search, [Document(page_content="doc")],
                               "_Store.similarity_search", {"langchain.vectorstore": 2}),
    "langchain.embeddings.update": (Observation, "update", _langchain_embed, 2,
                                    "DeterministicFakeEmbedding.embed_query", {"langchain.embeddings": 2}),
}


@pytest.mark.parametrize("case", sorted(LEAKS))
def test_an_observation_whose_start_fails_midway_still_ends(
        traced: Traced, fake: FakeOpenAI, client: openai.OpenAI, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    """Filling in a just-started observation failed: the call returns what it returns untraced, and
    the observation started is ended (it was left open for good, never exported)."""
    target, attribute, call, expected, name, counted = LEAKS[case]
    monkeypatch.setattr(target, attribute, _raise)
    assert call(fake, client) == expected
    monkeypatch.undo()
    assert [r["name"] for r in traced.records()] == [name]
    assert {k.removeprefix("internal_errors."): v for k, v in autotrace.stats().items()
            if k.startswith("internal_errors.")} == counted
