"""LangChain embedding models (which send no callback): one ``embedding`` per ``embed_query`` /
``embed_documents`` call, async ones named like their sync twins, with the text(s), the model,
``dimensions`` and ``{"count": n}`` as output; an OpenAI SDK request inside only enriches it;
``embed_query`` running ``embed_documents`` is one; inside a retriever or a direct store search it
is the retriever's child; classes defined after ``install()`` too; nothing imported early, and
``uninstall()`` leaves the classes as they were."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import chromadb
import pytest
from langchain_chroma import Chroma
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings, FakeEmbeddings
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_openai import OpenAIEmbeddings
from pydantic import BaseModel

import autotrace
from autotrace.integrations import langchain_embeddings
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain", "openai", "chroma")

QUERY = "DeterministicFakeEmbedding.embed_query"
DOCUMENTS = "DeterministicFakeEmbedding.embed_documents"


def _fields(record: dict[str, Any]) -> tuple[Any, ...]:
    metadata = record["metadata"]
    return (record["name"], record["input"], record["output"], metadata["input_count"], metadata.get("dimensions"),
            metadata["operation"], record["model"], record["level"])


# -- the fake models of langchain-core ---------------------------------------------------------------
def test_each_call_is_one_embedding_with_its_texts_and_a_summary_of_the_vectors(traced: Traced) -> None:
    model = DeterministicFakeEmbedding(size=4)
    assert len(model.embed_query("q")) == 4
    assert len(model.embed_documents(["a", "b", "c"])) == 3
    assert len(FakeEmbeddings(size=3).embed_documents([])) == 0
    records = traced.records()
    assert shape(records) == [("embedding", QUERY, []), ("embedding", DOCUMENTS, []),
                              ("embedding", "FakeEmbeddings.embed_documents", [])]
    assert [_fields(r) for r in records] == [
        (QUERY, "q", {"count": 1}, 1, 4, "embed_query", None, "DEFAULT"),
        (DOCUMENTS, ["a", "b", "c"], {"count": 3}, 3, 4, "embed_documents", None, "DEFAULT"),
        ("FakeEmbeddings.embed_documents", [], {"count": 0}, 0, None, "embed_documents", None, "DEFAULT")]


def test_async_calls_are_named_like_the_sync_ones_and_recorded_once(traced: Traced) -> None:
    model = DeterministicFakeEmbedding(size=4)

    async def embed() -> None:  # the base class's: the sync method, run in a thread
        assert len(await model.aembed_query("q")) == 4
        assert len(await model.aembed_documents(["a", "b"])) == 2

    asyncio.run(embed())
    records = traced.records()
    assert shape(records) == [("embedding", QUERY, []), ("embedding", DOCUMENTS, [])]
    assert [_fields(r) for r in records] == [
        (QUERY, "q", {"count": 1}, 1, 4, "aembed_query", None, "DEFAULT"),
        (DOCUMENTS, ["a", "b"], {"count": 2}, 2, 4, "aembed_documents", None, "DEFAULT")]


def test_without_content_capture_the_texts_are_not_recorded(traced: Traced) -> None:
    with autotrace.content_capture(False):
        DeterministicFakeEmbedding(size=2).embed_documents(["secret"])
    [record] = traced.records()
    assert (record["input"], record["output"], record["metadata"]["input_count"]) == (None, None, 1)


# -- classes defined after install() -------------------------------------------------------------------
class _Vectors(Embeddings):
    """A model defined before ``install()`` (at import), wrapped by it: ``embed_query`` calls
    ``embed_documents``, as many real ones do, and its async ``aembed_documents`` is native."""

    model_name = "bag-of-letters"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if "fail" in texts:
            raise ConnectionError("model server down")
        return [[float(len(t)), float(t.count("a"))] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        await asyncio.sleep(0)
        return self.embed_documents(texts)


def test_a_class_defined_after_install_is_traced_once_per_call_and_its_errors_propagate(traced: Traced) -> None:
    namespace: dict[str, Any] = {}
    exec("class Late(_Vectors):\n"  # defined now, after install()
         "    def embed_query(self, text):\n"
         "        return super().embed_query(text)\n", {"_Vectors": _Vectors}, namespace)
    late = namespace["Late"]()
    assert late.embed_query("banana") == [6.0, 3.0]
    assert asyncio.run(late.aembed_documents(["a", "bb"])) == [[1.0, 1.0], [2.0, 0.0]]
    assert asyncio.run(late.aembed_query("ab")) == [2.0, 1.0]  # the base's: embed_query in a thread
    with pytest.raises(ConnectionError, match="model server down") as raised:
        late.embed_documents(["fail"])
    assert type(raised.value) is ConnectionError and raised.value.args == ("model server down",)
    records = traced.records()
    assert shape(records) == [("embedding", "Late.embed_query", []), ("embedding", "Late.embed_documents", []),
                              ("embedding", "Late.embed_query", []), ("embedding", "Late.embed_documents", [])]
    assert [_fields(r) for r in records] == [
        ("Late.embed_query", "banana", {"count": 1}, 1, 2, "embed_query", "bag-of-letters", "DEFAULT"),
        ("Late.embed_documents", ["a", "bb"], {"count": 2}, 2, 2, "aembed_documents", "bag-of-letters", "DEFAULT"),
        ("Late.embed_query", "ab", {"count": 1}, 1, 2, "aembed_query", "bag-of-letters", "DEFAULT"),
        ("Late.embed_documents", ["fail"], None, 1, None, "embed_documents", "bag-of-letters", "ERROR")]
    assert records[-1]["status_message"] == "ConnectionError: model server down"


def test_a_pydantic_model_defined_after_install_with_the_model_base_first_is_traced(traced: Traced) -> None:
    class Served(BaseModel, Embeddings):  # as OpenAIEmbeddings and most provider classes are declared
        model: str = "served-embed-1"

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[1.0] * 3 for _ in texts]

        def embed_query(self, text: str) -> list[float]:
            return [1.0] * 3

        async def aembed_query(self, text: str) -> list[float]:  # native, not the sync one in a thread
            await asyncio.sleep(0)
            return [2.0] * 3

    assert Served().embed_query("x") == [1.0] * 3
    assert asyncio.run(Served(model="served-embed-2").aembed_query("y")) == [2.0] * 3
    assert [_fields(r) for r in traced.records()] == [
        ("Served.embed_query", "x", {"count": 1}, 1, 3, "embed_query", "served-embed-1", "DEFAULT"),
        ("Served.embed_query", "y", {"count": 1}, 1, 3, "aembed_query", "served-embed-2", "DEFAULT")]


# -- OpenAIEmbeddings: the SDK request inside enriches the LangChain call ----------------------------------
def _openai(fake: FakeOpenAI, **options: Any) -> OpenAIEmbeddings:
    return OpenAIEmbeddings(model="text-embedding-3-small", base_url=fake.base_url, api_key="sk-test",
                            check_embedding_ctx_length=False, dimensions=4, max_retries=0, **options)


def test_openai_embeddings_are_one_embedding_per_call_enriched_by_the_sdk_request(traced: Traced,
                                                                                   fake: FakeOpenAI) -> None:
    embeddings = _openai(fake)
    assert len(embeddings.embed_documents(["a b", "c"])) == 2
    fake.script(model="text-embedding-3-small-2025")  # the served model, which only the response tells
    assert len(embeddings.embed_query("q")) == 4
    assert len(asyncio.run(embeddings.aembed_query("x"))) == 4
    records = traced.records()
    assert shape(records) == [("embedding", "OpenAIEmbeddings.embed_documents", []),
                              ("embedding", "OpenAIEmbeddings.embed_query", []),
                              ("embedding", "OpenAIEmbeddings.embed_query", [])]  # no openai.embeddings inside
    assert [_fields(r) for r in records] == [
        ("OpenAIEmbeddings.embed_documents", ["a b", "c"], {"count": 2}, 2, 4, "embed_documents",
         "text-embedding-3-small", "DEFAULT"),
        ("OpenAIEmbeddings.embed_query", "q", {"count": 1}, 1, 4, "embed_query", "text-embedding-3-small-2025",
         "DEFAULT"),
        ("OpenAIEmbeddings.embed_query", "x", {"count": 1}, 1, 4, "aembed_query", "text-embedding-3-small",
         "DEFAULT")]
    assert [r["usage"] for r in records] == [{"input": 9, "total": 9}, {"input": 4, "total": 4},
                                             {"input": 4, "total": 4}]  # from the SDK's responses
    assert all(r["cost"]["total"] > 0 for r in records)


def test_a_batch_sent_in_several_requests_sums_their_usage_and_cost(traced: Traced, fake: FakeOpenAI) -> None:
    _openai(fake, chunk_size=2).embed_documents(["a b", "c", "d"])  # two requests: ["a b", "c"], ["d"]
    _openai(fake).embed_documents(["a b", "c"])
    _openai(fake).embed_documents(["d"])
    batched, first, second = traced.records()
    assert (batched["output"], batched["usage"]) == ({"count": 3}, {"input": 13, "total": 13})
    assert (first["usage"], second["usage"]) == ({"input": 9, "total": 9}, {"input": 4, "total": 4})
    assert batched["cost"] == pytest.approx({k: first["cost"][k] + second["cost"][k] for k in first["cost"]})


def test_a_failed_openai_embedding_raises_as_without_autotrace(traced: Traced, fake: FakeOpenAI) -> None:
    import openai

    fake.script(error=(400, "bad input"))
    with pytest.raises(openai.BadRequestError) as raised:
        _openai(fake).embed_query("q")
    assert raised.value.status_code == 400
    [record] = traced.records()
    assert (record["name"], record["level"], record["status_message"]) == (
        "OpenAIEmbeddings.embed_query", "ERROR", f"BadRequestError: {raised.value}")


# -- under a retriever: a direct store search, a LangChain retriever -----------------------------------
def _chroma() -> Chroma:
    return Chroma(collection_name=f"kb-{uuid.uuid4().hex[:8]}", embedding_function=DeterministicFakeEmbedding(size=8),
                  client=chromadb.EphemeralClient())


@pytest.mark.parametrize("store_class", ["InMemoryVectorStore", "Chroma"])
def test_the_query_embedding_is_the_child_of_the_search(traced: Traced, store_class: str) -> None:
    store = InMemoryVectorStore(DeterministicFakeEmbedding(size=8)) if store_class == "InMemoryVectorStore" else _chroma()
    store.add_texts(["red apple", "pear"], ids=["a", "p"])
    assert [d.id for d in store.similarity_search("apple", k=1)] == ["a"]
    store.as_retriever(search_kwargs={"k": 1}).invoke("pear")
    records = traced.records()
    embed = ("embedding", QUERY, [])
    added = [("embedding", DOCUMENTS, [])] + ([("span", "chroma.upsert", [])] if store_class == "Chroma" else [])
    assert shape(records) == [*added,
                              ("retriever", f"{store_class}.similarity_search", [embed]),
                              ("retriever", "VectorStoreRetriever", [embed])]
    assert [r["input"] for r in records if r["type"] == "embedding"] == [["red apple", "pear"], "apple", "pear"]


# -- start-up and uninstall ------------------------------------------------------------------------------
def test_uninstall_leaves_the_models_as_they_were(traced: Traced) -> None:
    class Defined(DeterministicFakeEmbedding):
        def embed_query(self, text: str) -> list[float]:
            return [0.5]

    autotrace.uninstall()
    assert "__init_subclass__" not in Embeddings.__dict__
    for cls in (Embeddings, DeterministicFakeEmbedding, FakeEmbeddings, OpenAIEmbeddings, _Vectors, Defined):
        for name in langchain_embeddings.METHODS:
            method = cls.__dict__.get(name)
            assert method is None or not hasattr(method, "__wrapped__"), (cls, name)
    assert Defined(size=1).embed_query("q") == [0.5]


def test_the_models_are_patched_when_the_application_imports_them_not_before(tmp_path: Path) -> None:
    program = """
import sys, autotrace
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=("langchain",), export_interval=0.05)
import langchain_core.runnables
print("embeddings imported at start-up:", "langchain_core.embeddings.embeddings" in sys.modules)
from langchain_core.embeddings import DeterministicFakeEmbedding
DeterministicFakeEmbedding(size=4).embed_query("apple")
autotrace.flush()
from autotrace.export.local_store import LocalStore
print([(o["type"], o["name"], o["input"]) for o in LocalStore(sys.argv[1], read_only=True).observations()])
"""
    done = subprocess.run([sys.executable, "-c", program, str(tmp_path / "t.db")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["embeddings imported at start-up: False",
                                        f"[('embedding', '{QUERY}', 'apple')]"]
