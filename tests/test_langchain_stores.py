"""LangChain vector stores searched directly, without a retriever (which sends no callbacks): one
``retriever`` per search with the query text, ``top_k``, filter and the documents found, which the
store client's own patch only enriches; nothing more inside a retriever or an outer search; classes
defined after ``install()`` too; ``uninstall()`` leaves the stores as they were."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import chromadb
import pytest
from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import VectorStore

import autotrace
from autotrace.integrations import langchain_stores
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("langchain", "chroma")


def _chroma() -> Chroma:
    store = Chroma(collection_name=f"kb-{uuid.uuid4().hex[:8]}", embedding_function=DeterministicFakeEmbedding(size=8),
                   client=chromadb.EphemeralClient())
    store.add_documents([Document(page_content=f"doc {i}", metadata={"n": i}) for i in range(4)],
                        ids=[f"d{i}" for i in range(4)])
    return store


#: The query's embedding, which the store's model records under the search (``langchain_embeddings``).
QUERY = ("embedding", "DeterministicFakeEmbedding.embed_query", [])


def _searches(traced: Traced) -> list[dict[str, Any]]:
    return [r for r in traced.records() if r["type"] == "retriever"]


def test_a_direct_search_is_one_retriever_with_the_query_and_the_documents(traced: Traced) -> None:
    store = _chroma()
    found = store.similarity_search_with_score("doc 2", k=2, filter={"n": {"$gte": 1}})
    plain = store.similarity_search("doc 1", k=1)
    [with_score, search] = _searches(traced)
    assert shape(traced.records())[-2:] == [("retriever", "Chroma.similarity_search_with_score", [QUERY]),
                                            ("retriever", "Chroma.similarity_search", [QUERY])]  # no chroma.query
    assert (with_score["input"], with_score["top_k"], with_score["doc_count"]) == ("doc 2", 2, 2)
    assert with_score["output"] == [{"id": d.id, "content": d.page_content, "metadata": d.metadata, "score": s}
                                    for d, s in found]
    assert with_score["metadata"]["filter"] == {"n": {"$gte": 1}}
    assert with_score["metadata"]["scores"] == [s for _, s in found]
    assert with_score["metadata"]["operation"] == "similarity_search_with_score"
    assert with_score["metadata"]["collection"] == store._collection.name  # from the client's patch
    assert (search["input"], search["top_k"]) == ("doc 1", 1)
    assert search["output"] == [{"id": plain[0].id, "content": "doc 1", "metadata": {"n": 1}}]
    # the client's distance of the document found, added by its patch (LangChain gives none here)
    assert search["metadata"]["scores"] == [store.similarity_search_with_score("doc 1", k=1)[0][1]]


def test_searches_calling_each_other_are_recorded_once(traced: Traced) -> None:
    store = _chroma()
    store.similarity_search_with_relevance_scores("doc 3", k=1)  # the base class's, calling Chroma's with_score
    store.max_marginal_relevance_search("doc 1", k=2, fetch_k=4)
    asyncio.run(store.asimilarity_search("doc 0", k=1))  # the base class's, running the sync one in a thread
    assert shape(traced.records())[-3:] == [("retriever", "Chroma.similarity_search_with_relevance_scores", [QUERY]),
                                            ("retriever", "Chroma.max_marginal_relevance_search", [QUERY]),
                                            ("retriever", "Chroma.similarity_search", [QUERY])]
    relevance, mmr, async_search = _searches(traced)
    assert [d["id"] for d in relevance["output"]] == ["d3"] and relevance["output"][0]["score"] is not None
    assert (mmr["top_k"], mmr["doc_count"]) == (2, 2)
    assert (async_search["input"], async_search["metadata"]["operation"]) == ("doc 0", "asimilarity_search")


def test_inside_a_retriever_the_search_is_the_retrievers(traced: Traced) -> None:
    store = _chroma()
    store.as_retriever(search_kwargs={"k": 2}).invoke("doc 1")
    assert shape(traced.records())[-1:] == [("retriever", "VectorStoreRetriever", [QUERY])]


class _Listed(VectorStore):
    """A store defined after ``install()``: its searches are wrapped as it is defined."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def add_texts(self, texts: Any, metadatas: Any = None, **kwargs: Any) -> list[str]:
        raise NotImplementedError

    @classmethod
    def from_texts(cls, texts: Any, embedding: Any, metadatas: Any = None, **kwargs: Any) -> _Listed:
        raise NotImplementedError

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return self.find(query, k)

    def find(self, query: str, k: int) -> list[Document]:
        if query == "fail":
            raise LookupError("index offline")
        return [Document(page_content=t, id=str(i)) for i, t in enumerate(self.texts) if query in t][:k]


def test_a_store_class_defined_after_install_is_traced_and_its_errors_propagate(traced: Traced) -> None:
    namespace: dict[str, Any] = {}
    exec("class Late(_Listed):\n"  # defined now, after install(), with a search of its own
         "    def similarity_search(self, query, k=4, **kwargs):\n"
         "        return self.find(query, k)\n", {"_Listed": _Listed},
         namespace)
    late = namespace["Late"](["red apple", "green apple", "pear"])
    assert [d.page_content for d in late.similarity_search("apple", k=5)] == ["red apple", "green apple"]
    with pytest.raises(LookupError, match="index offline"):
        late.similarity_search("fail")
    ok, failed = _searches(traced)
    assert (ok["name"], ok["doc_count"], [d["id"] for d in ok["output"]]) == ("Late.similarity_search", 2,
                                                                                  ["0", "1"])
    assert (failed["level"], failed["status_message"]) == ("ERROR", "LookupError: index offline")


def test_uninstall_leaves_the_stores_as_they_were(traced: Traced) -> None:
    store = _chroma()
    autotrace.uninstall()
    assert "__init_subclass__" not in VectorStore.__dict__
    for cls in (VectorStore, Chroma):
        for name in (*langchain_stores.SEARCHES, *(f"a{n}" for n in langchain_stores.SEARCHES)):
            method = cls.__dict__.get(name)
            assert method is None or not hasattr(method, "__wrapped__"), (cls, name)
    assert [d.id for d in store.similarity_search("doc 1", k=1)] == ["d1"]


def test_the_stores_are_patched_when_the_application_imports_them_not_before(tmp_path: Any) -> None:
    import subprocess
    import sys

    program = """
import sys, autotrace
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=("langchain",), export_interval=0.05)
import langchain_core.runnables
print("retrievers imported at start-up:", "langchain_core.retrievers" in sys.modules)
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore
store = InMemoryVectorStore(DeterministicFakeEmbedding(size=4))
store.add_texts(["red apple", "pear"], ids=["a", "p"])
store.similarity_search("apple", k=1)
autotrace.flush()
from autotrace.export.local_store import LocalStore
print([(o["type"], o["name"], o["input"]) for o in LocalStore(sys.argv[1], read_only=True).observations()
       if o["type"] == "retriever"])
"""
    done = subprocess.run([sys.executable, "-c", program, str(tmp_path / "t.db")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["retrievers imported at start-up: False",
                                        "[('retriever', 'InMemoryVectorStore.similarity_search', 'apple')]"]


def test_a_search_is_named_as_the_class_defines_it(traced: Traced) -> None:
    from langchain_core.vectorstores import InMemoryVectorStore

    def logged(search: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:  # no functools.wraps: named "wrapper"
            return search(self, *args, **kwargs)
        return wrapper

    class Logged(InMemoryVectorStore):
        similarity_search = logged(InMemoryVectorStore.similarity_search)

    store = Logged(DeterministicFakeEmbedding(size=8))
    store.add_texts(["red apple", "pear"], ids=["a", "p"])
    assert [d.id for d in store.similarity_search("apple", k=1)] == ["a"]
    [search] = [r for r in traced.records() if r["type"] == "retriever"]
    assert (search["name"], search["metadata"]["operation"]) == ("Logged.similarity_search", "similarity_search")
