"""Vector-store calls as demanding applications make them, through the real clients: Pinecone's
``async_req=True`` (its own thread pool), FAISS searches of many queries at once, a pgvector
``LIMIT`` given as a numpy integer, and which way each store's scores point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import autotrace
from autotrace.integrations.documents import MAX_DOCUMENTS
from tests.fake_pinecone import FakePinecone
from tests.helpers import Traced, shape


def test_pinecone_async_req_calls_keep_the_callers_tenant_and_trace(tmp_path: Path) -> None:
    """``async_req=True`` runs ``query``/``upsert`` on the SDK's ``multiprocessing`` thread pool,
    which starts with none of the caller's context: they were tenantless traces of their own."""
    pinecone = pytest.importorskip("pinecone")
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pinecone",),
                      export_interval=0.05)
    with FakePinecone() as fake:
        index = pinecone.Pinecone(api_key="pc-test").Index(host=fake.url)
        with autotrace.tenant("acme"), autotrace.start_chain("request") as request:
            index.upsert(vectors=[("a", [1.0, 0.0], {"text": "alpha"})], namespace="kb", async_req=True).get()
            response = index.query(vector=[1.0, 0.1], top_k=2, namespace="kb", include_metadata=True,
                                   async_req=True).get()
    records = Traced(tmp_path / "t.db").records()
    assert [m.id for m in response.matches] == ["a"]
    assert shape(records) == [("chain", "request", [("span", "pinecone.upsert", []),
                                                    ("retriever", "pinecone.query", [])])]
    assert {(r["trace_id"], r["tenant"]) for r in records} == {(request.trace_id, "acme")}
    assert records[2]["output"] == [{"id": "a", "score": pytest.approx(response.matches[0].score),
                                     "content": "alpha"}]


def _ivf_with_an_empty_list() -> tuple[object, np.ndarray, np.ndarray]:
    """An IVF index of two lists, the vectors all in the list near ``near``: a query near ``far``
    probing one list finds nothing (ids of -1)."""
    import faiss

    near, far = np.array([0, 0], dtype="float32"), np.array([100, 100], dtype="float32")
    rng = np.random.default_rng(0)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(2), 2, 2)
    index.train(np.concatenate([near + rng.random((50, 2), dtype="float32"),
                                far + rng.random((50, 2), dtype="float32")]))
    index.add(near + rng.random((20, 2), dtype="float32"))
    index.nprobe = 1
    return index, near, far


@pytest.mark.integrations("faiss")
def test_faiss_search_of_many_queries_records_the_first_queries_counts(traced: Traced) -> None:
    """A search of thousands of queries did Python work per query (its cost grew tenfold) and
    recorded every query's count, cut into a string that was no longer a list. The first
    ``MAX_DOCUMENTS`` queries' counts are recorded; documents still come from any query."""
    index, near, far = _ivf_with_an_empty_list()
    queries = np.concatenate([np.tile(far, (MAX_DOCUMENTS, 1)), np.tile(near, (150, 1))])
    distances, ids = index.search(queries, 3)  # type: ignore[attr-defined]
    (record,) = traced.records()
    assert (ids[:MAX_DOCUMENTS] == -1).all() and (ids[MAX_DOCUMENTS:] != -1).all()
    assert record["doc_count"] == 450 and record["metadata"]["queries"] == 250
    assert record["metadata"]["doc_counts"] == [0] * MAX_DOCUMENTS
    found = [(int(i), float(d)) for i, d in zip(ids[MAX_DOCUMENTS:].ravel(), distances[MAX_DOCUMENTS:].ravel(),
                                                   strict=True)][:MAX_DOCUMENTS]
    assert record["output"] == [{"id": i, "score": d} for i, d in found]
    assert record["metadata"]["documents_recorded"] == MAX_DOCUMENTS
    assert autotrace.stats()["retrieval_doc_counts_truncated"] == 150
    assert autotrace.stats()["retrieval_documents_truncated"] == 350


@pytest.mark.integrations("faiss")
def test_faiss_range_search_of_many_queries_records_the_first_queries_counts(traced: Traced) -> None:
    """Likewise for a range search: its neighbours after the first queries, best first per query."""
    import faiss

    index = faiss.IndexFlatIP(2)
    index.add(np.array([[1, 0], [2, 0], [3, 0]], dtype="float32"))
    queries = np.concatenate([np.tile([0, 1], (MAX_DOCUMENTS + 1, 1)), [[1, 0], [0, 1], [2, 0]]]).astype("float32")
    limits, _, _ = index.range_search(queries, 1.5)
    (record,) = traced.records()
    assert limits.tolist()[-4:] == [0, 2, 2, 5]
    assert record["doc_count"] == 5 and record["metadata"]["doc_counts"] == [0] * MAX_DOCUMENTS
    assert record["output"] == [{"id": 2, "score": 3.0}, {"id": 1, "score": 2.0},
                                {"id": 2, "score": 6.0}, {"id": 1, "score": 4.0}, {"id": 0, "score": 2.0}]
    assert record["metadata"]["top_score"] == 3.0
    assert autotrace.stats()["retrieval_doc_counts_truncated"] == 4


@pytest.mark.integrations("chroma")
def test_chroma_queries_record_which_way_their_scores_point(traced: Traced) -> None:
    """Chroma's scores are distances (lower is closer) in every space; the space says what they
    measure, given as the collection's configuration or, the older way, its metadata."""
    chromadb = pytest.importorskip("chromadb")

    client = chromadb.EphemeralClient()
    spaces = [client.create_collection("default-space", embedding_function=None),
              client.create_collection("cosine-space", configuration={"hnsw": {"space": "cosine"}},
                                       embedding_function=None),
              client.create_collection("ip-space", metadata={"hnsw:space": "ip"}, embedding_function=None)]
    distances = []
    for collection in spaces:
        collection.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.6, 0.8]])
        distances.append(collection.query(np.array([1.0, 0.0]), n_results=2, include=["distances"])["distances"])
    records = traced.records()
    queries = [r for r in records if r["name"] == "chroma.query"]
    assert [r["metadata"]["metric"] for r in queries] == ["l2", "cosine", "inner_product"]
    assert [r["metadata"]["scores"] for r in queries] == [pytest.approx(d[0]) for d in distances]
    assert [[round(s, 3) for s in r["metadata"]["scores"]] for r in queries] == [[0.0, 0.8], [0.0, 0.4], [0.0, 0.4]]


@pytest.mark.integrations("faiss")
def test_faiss_searches_record_their_indexs_metric(traced: Traced) -> None:
    """An inner-product index's scores rank higher first, an L2 index's lower first: the search
    records the metric, as a range search does."""
    import faiss

    vectors = np.array([[1, 0], [0.6, 0.8]], dtype="float32")
    inner, l2 = faiss.IndexFlatIP(2), faiss.IndexIDMap(faiss.IndexFlatL2(2))
    inner.add(vectors)
    l2.add_with_ids(vectors, np.array([10, 20]))
    inner.search(vectors[:1], 2)
    l2.search(vectors[:1], 2)
    records = traced.records()
    assert [(r["metadata"]["collection"], r["metadata"]["metric"]) for r in records] == [
        ("IndexFlatIP", "inner_product"), ("IndexIDMap", "l2")]
    assert [r["output"] for r in records] == [[{"id": 0, "score": 1.0}, {"id": 1, "score": pytest.approx(0.6)}],
                                              [{"id": 10, "score": 0.0}, {"id": 20, "score": pytest.approx(0.8)}]]


@pytest.mark.integrations("qdrant")
def test_qdrant_hybrid_query_records_its_named_vectors_and_prefetches(traced: Traced) -> None:
    """A collection of named dense, multi- and sparse vectors: a query recorded only its query's
    kind, not which vector it searched (``using``) nor the prefetches a fusion merges; a
    multivector or a list of numpy floats recorded nothing of its shape."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config={
        "dense": models.VectorParams(size=3, distance=models.Distance.COSINE),
        "colbert": models.VectorParams(size=2, distance=models.Distance.DOT, multivector_config=models.MultiVectorConfig(
            comparator=models.MultiVectorComparator.MAX_SIM))},
        sparse_vectors_config={"sparse": models.SparseVectorParams()})
    client.upsert("kb", [models.PointStruct(id=i, payload={"text": f"doc {i}"}, vector={
        "dense": [float(i), 1.0, 0.5], "colbert": [[1.0, float(i)], [0.5, 0.5]],
        "sparse": models.SparseVector(indices=[i], values=[1.0])}) for i in range(1, 4)])
    dense = client.query_points("kb", list(np.array([1, 1, 0.5], dtype="float32")), "dense", limit=2)
    late = client.query_points("kb", query=np.array([[1.0, 1.0], [0.0, 1.0]]), using="colbert", limit=2)
    fused = client.query_points("kb", prefetch=[
        models.Prefetch(query=[1.0, 1.0, 0.5], using="dense", limit=3),
        models.Prefetch(query=models.SparseVector(indices=[2], values=[1.0]), using="sparse", limit=3,
                        prefetch=models.Prefetch(query=[1.0, 1.0, 0.5], using="dense", limit=10))],
        query=models.FusionQuery(fusion=models.Fusion.RRF), limit=2)
    records = traced.records()[1:]
    assert [[d["id"] for d in r["output"]] for r in records] == [[p.id for p in q.points] for q in (dense, late, fused)]
    assert [{k: r["metadata"].get(k) for k in ("using", "query_type", "vector_dimensions", "prefetch")}
            for r in records] == [
        {"using": "dense", "query_type": None, "vector_dimensions": 3, "prefetch": None},
        {"using": "colbert", "query_type": "multivector", "vector_dimensions": 2, "prefetch": None},
        {"using": None, "query_type": "fusion", "vector_dimensions": None, "prefetch": [
            {"using": "dense", "limit": 3, "vector_dimensions": 3},
            {"using": "sparse", "limit": 3, "query_type": "sparse", "prefetch": 1}]}]
