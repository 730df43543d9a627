"""The frameworks' own vector-store and embedding wrappers over the real clients: LangChain's
``Chroma``/``QdrantVectorStore``, LlamaIndex's ``ChromaVectorStore``/``QdrantVectorStore`` and
``OpenAIEmbedding`` (against the loopback fake OpenAI server). One retriever per retrieval (the
framework's), enriched by the store's patch; one embedding per embedding call."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import chromadb
import pytest
from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_qdrant import QdrantVectorStore as LcQdrant
from llama_index.core import Document as LiDocument
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.embeddings.openai import OpenAIEmbedding
from llama_index.vector_stores.chroma import ChromaVectorStore
from llama_index.vector_stores.qdrant import QdrantVectorStore as LiQdrant
from qdrant_client import QdrantClient, models

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = [
    pytest.mark.integrations("langchain", "llama_index", "chroma", "qdrant", "openai"),
    # the libraries' own notes on the test set-up (distances as relevance scores, a local Qdrant)
    pytest.mark.filterwarnings("ignore:Relevance scores must be between 0 and 1:UserWarning"),
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant:UserWarning"),
]

DOCS = [Document(page_content=f"doc {i}", metadata={"n": i}) for i in range(5)]


def _chroma() -> Chroma:
    store = Chroma(collection_name=f"kb-{uuid.uuid4().hex[:8]}", embedding_function=DeterministicFakeEmbedding(size=8),
                   client=chromadb.EphemeralClient())
    store.add_documents(DOCS, ids=[f"d{i}" for i in range(5)])
    return store


#: The query's embedding, which the store's model records under the retriever (``langchain_embeddings``).
QUERY = [("embedding", "DeterministicFakeEmbedding.embed_query", [])]


def _retrievers(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == "retriever"]


def test_langchain_mmr_and_threshold_scores_follow_the_documents_kept(traced: Traced) -> None:
    store = _chroma()
    distances = {d.id: s for d, s in store.similarity_search_with_score("doc 1", k=5)}
    before = len(traced.records())
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 4}).invoke("doc 1")
    kept = store.as_retriever(search_type="similarity_score_threshold",
                              search_kwargs={"k": 2, "score_threshold": 0.5}).invoke("doc 1")
    records = traced.records()[before:]
    assert shape(records) == [("retriever", "VectorStoreRetriever", QUERY)] * 2
    with_mmr, with_threshold = _retrievers(records)
    assert [d["id"] for d in with_mmr["output"]] == [d.id for d in mmr] == ["d1", "d4"]
    # the store's distances of the two documents MMR kept, not of the four it fetched
    assert with_mmr["metadata"]["scores"] == [distances["d1"], distances["d4"]]
    assert with_mmr["doc_count"] == 2 and with_mmr["top_k"] == 4  # fetch_k: what the store was asked for
    assert with_mmr["metadata"]["store"] == "chroma"
    assert with_mmr["metadata"]["collection"] == store._collection.name
    assert [d["id"] for d in with_threshold["output"]] == [d.id for d in kept] == ["d1"]
    assert with_threshold["metadata"]["scores"] == [distances["d1"]]


def test_langchain_retriever_records_the_store_filter_and_top_k(traced: Traced) -> None:
    store = _chroma()
    found = store.as_retriever(search_kwargs={"k": 2, "filter": {"n": {"$gte": 3}}}).invoke("doc 1")
    found_async = asyncio.run(store.as_retriever(search_kwargs={"k": 1}).ainvoke("doc 2"))
    records = traced.records()
    assert shape(records)[-2:] == [("retriever", "VectorStoreRetriever", QUERY)] * 2
    sync, async_ = _retrievers(records)[-2:]
    assert sync["input"] == "doc 1" and sync["top_k"] == 2
    assert sync["metadata"]["filter"] == {"n": {"$gte": 3}}
    assert [d["id"] for d in sync["output"]] == [d.id for d in found] and len(found) == 2
    assert sync["output"][0]["metadata"] == found[0].metadata
    assert async_["input"] == "doc 2" and async_["top_k"] == 1 and async_["doc_count"] == len(found_async) == 1
    assert "filter" not in async_["metadata"]


def test_langchain_qdrant_documents_carry_the_point_ids(traced: Traced) -> None:
    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE))
    store = LcQdrant(client=client, collection_name="kb", embedding=DeterministicFakeEmbedding(size=8))
    ids = [str(uuid.UUID(int=i)) for i in range(5)]
    store.add_documents(DOCS, ids=ids)
    expected = store.similarity_search_with_score("doc 1", k=2)
    found = store.as_retriever(search_kwargs={"k": 2}).invoke("doc 1")
    records = traced.records()
    documents = ("embedding", "DeterministicFakeEmbedding.embed_documents", [])
    # the store checks the collection's size with an embedding of "dummy_text" when it is made
    # a direct search is LangChain's (langchain_stores)
    assert shape(records) == [documents, documents, ("span", "qdrant.upsert", []),
                              ("retriever", "QdrantVectorStore.similarity_search_with_score", QUERY),
                              ("retriever", "VectorStoreRetriever", QUERY)]
    assert records[2]["metadata"] == {"store": "qdrant", "operation": "upsert", "count": 5, "collection": "kb"}
    retriever = _retrievers(records)[1]
    assert [d["id"] for d in retriever["output"]] == [d.metadata["_id"] for d in found] == \
        [d.metadata["_id"] for d, _ in expected]
    assert retriever["metadata"]["scores"] == [s for _, s in expected]
    assert retriever["metadata"]["collection"] == "kb" and retriever["top_k"] == 2


def _index(vector_store: Any, embed_model: Any) -> VectorStoreIndex:
    docs = [LiDocument(text=f"doc {i}", metadata={"n": i}, id_=f"doc{i}") for i in range(3)]
    return VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=vector_store),
                                           embed_model=embed_model)


@pytest.mark.parametrize("kind", ["chroma", "qdrant"])
def test_llama_index_retriever_owns_the_search_with_top_k(traced: Traced, kind: str) -> None:
    if kind == "chroma":
        vector_store: Any = ChromaVectorStore(chroma_collection=chromadb.EphemeralClient().get_or_create_collection(
            f"kb-{uuid.uuid4().hex[:8]}"))
        collection, write = vector_store._collection.name, "chroma.add"
    else:
        vector_store = LiQdrant(client=QdrantClient(":memory:"), collection_name="kb")
        collection, write = "kb", "qdrant.upload_points"
    index = _index(vector_store, MockEmbedding(embed_dim=8))
    nodes = index.as_retriever(similarity_top_k=2).retrieve("doc 1")
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=1)
    if kind == "chroma":
        asyncio.run(engine.aquery("doc 2"))
    else:  # LlamaIndex's Qdrant store queries asynchronously only through an AsyncQdrantClient of its own
        engine.query("doc 2")
    a = "" if kind == "qdrant" else "a"
    records = traced.records()
    tree = shape(records)
    assert tree[:3] == [("embedding", "MockEmbedding.get_text_embedding_batch", []), ("span", write, []),
                        ("retriever", "VectorIndexRetriever.retrieve",
                         [("embedding", "MockEmbedding.get_query_embedding", [])])]
    assert tree[3][:2] == ("chain", f"RetrieverQueryEngine.{a}query")
    assert tree[3][2][0] == ("retriever", f"VectorIndexRetriever.{a}retrieve",
                             [("embedding", f"MockEmbedding.{a}get_query_embedding", [])])
    assert next(r for r in records if r["name"] == write)["metadata"]["count"] == 3
    sync, async_ = _retrievers(records)
    assert sync["top_k"] == 2 and async_["top_k"] == 1
    assert sync["metadata"]["store"] == async_["metadata"]["store"] == kind
    assert sync["metadata"]["collection"] == collection
    assert sync["metadata"]["scores"] == [n.score for n in nodes]
    assert [d["id"] for d in sync["output"]] == [n.node.node_id for n in nodes]


def test_openai_embedding_one_observation_per_call_with_exact_usage(traced: Traced) -> None:
    with FakeOpenAI() as fake:
        model = OpenAIEmbedding(api_base=fake.base_url, api_key="sk-test", model="text-embedding-3-small",
                                max_retries=0)
        usage = []
        raw = model._get_client().embeddings.create(input=["hello"], model="text-embedding-3-small")
        usage.append(raw.usage.prompt_tokens)
        vector = model.get_text_embedding("hello")
        vectors = model.get_text_embedding_batch(["a", "b", "c"])
        query = asyncio.run(model.aget_query_embedding("q"))
    records = [r for r in traced.records() if r["name"].startswith("OpenAIEmbedding")]
    assert shape(records) == [("embedding", "OpenAIEmbedding.get_text_embedding", []),
                              ("embedding", "OpenAIEmbedding.get_text_embedding_batch", []),
                              ("embedding", "OpenAIEmbedding.aget_query_embedding", [])]
    one, batch, asynchronous = records
    assert one["model"] == "text-embedding-3-small" and one["usage"]["input"] == usage[0]
    assert one["metadata"]["input_count"] == 1 and one["metadata"]["dimensions"] == len(vector)
    assert batch["metadata"]["input_count"] == 3 and batch["metadata"]["dimensions"] == len(vectors[0])
    assert isinstance(batch["usage"]["input"], int) and batch["usage"]["total"] == batch["usage"]["input"]
    assert asynchronous["metadata"]["dimensions"] == len(query) and asynchronous["input"] == "q"


def test_a_store_error_propagates_unchanged_with_an_error_retriever(traced: Traced) -> None:
    store = _chroma()
    retriever = store.as_retriever(search_kwargs={"k": 2, "filter": {"n": {"$nope": 1}}})
    with pytest.raises(ValueError, match=r"got \$nope in query") as raised:  # chromadb's own error, unchanged
        retriever.invoke("doc 1")
    assert type(raised.value) is ValueError
    records = traced.records()
    assert shape(records)[-1] == ("retriever", "VectorStoreRetriever", QUERY)  # the embedding worked
    failed = _retrievers(records)[-1]
    assert failed["level"] == "ERROR" and failed["error"] is True
    assert failed["status_message"] == f"ValueError: {raised.value}"
