"""Twenty-first review, vector-store recording gaps: a FAISS search kept to some ids
(``SearchParameters(sel=IDSelector...)``: its selector's kind and size, never its ids), and a
pgvector search written as a whole statement in parentheses (its ``LIMIT`` is its top_k), against
the real faiss-cpu and a real Postgres 16 with pgvector (the pgserver wheel)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import autotrace
from tests.helpers import Traced
from tests.test_vs_pgvector import postgres  # noqa: F401  (the module's server, with its ``items``)

faiss = pytest.importorskip("faiss")


def _install(tmp_path: Path, integration: str) -> Traced:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(integration,),
                      export_interval=0.05)
    return Traced(tmp_path / "t.db")


def _flat() -> Any:
    index = faiss.IndexFlatL2(2)
    index.add(np.array([[float(i), 0.0] for i in range(100)], dtype="float32"))
    return index


def test_a_search_kept_to_some_ids_records_its_selector(tmp_path: Path) -> None:
    """A search with an id selector was recorded like one over the whole index: the ids it may
    return (a tenant's, say) were nowhere. Each selector's kind and size, the ids never (a
    thousand of them here)."""
    traced = _install(tmp_path, "faiss")
    index, query = _flat(), np.array([[50.2, 0.0]], dtype="float32")
    tenant = np.arange(0, 100, 2, dtype="int64")  # the even ids
    batch = faiss.IDSelectorBatch(np.concatenate([tenant, np.arange(1000, 1950, dtype="int64")]))
    _, ids = index.search(query, 3, params=faiss.SearchParameters(sel=batch))
    index.search(query, 3, params=faiss.SearchParameters(sel=faiss.IDSelectorRange(10, 40)))
    index.search(query, 2, params=faiss.SearchParameters(sel=faiss.IDSelectorArray(tenant)))
    bitmap = np.packbits(np.array([i % 3 == 0 for i in range(100)]), bitorder="little")
    index.search(query, 2, params=faiss.SearchParameters(sel=faiss.IDSelectorBitmap(bitmap)))
    odd = faiss.IDSelectorNot(faiss.IDSelectorAnd(batch, faiss.IDSelectorRange(0, 100)))
    index.range_search(query, 4.0, params=faiss.SearchParameters(sel=odd))
    index.search(query, 2)
    records = traced.records()
    assert ids.tolist() == [[50, 52, 48]] == [[d["id"] for d in records[0]["output"]]]
    assert [r["metadata"].get("id_filter") for r in records] == [
        {"kind": "batch", "size": 1000}, {"kind": "range", "size": 30}, {"kind": "array", "size": 50},
        {"kind": "bitmap", "size": 34},
        {"kind": "not", "of": [{"kind": "and", "of": [{"kind": "batch", "size": 1000}, {"kind": "range", "size": 100}]}]},
        None]
    assert [d["id"] for d in records[4]["output"]] == [51, 49]  # within 2 of 50.2, not a tenant's


def test_an_ivf_search_kept_to_some_ids_records_its_selector(tmp_path: Path) -> None:
    """``SearchParametersIVF(sel=..., nprobe=...)``; a batch made before ``install()`` records its
    kind only (faiss keeps no count of its ids)."""
    before = faiss.IDSelectorBatch(np.arange(10, dtype="int64"))
    traced = _install(tmp_path, "faiss")
    vectors = np.random.default_rng(3).random((40, 2), dtype="float32")
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(2), 2, 2)
    index.train(vectors)
    index.add(vectors)
    _, ids = index.search(vectors[:1], 3, params=faiss.SearchParametersIVF(sel=before, nprobe=2))
    assert set(ids[0].tolist()) <= set(range(10))
    (record,) = traced.records()
    assert record["metadata"]["id_filter"] == {"kind": "batch"}
    autotrace.uninstall()
    assert not hasattr(faiss.IDSelectorBatch(np.arange(3, dtype="int64")), "_autotrace_size")


def test_a_parenthesised_search_records_its_limit(tmp_path: Path, postgres: str) -> None:  # noqa: F811
    """``(SELECT ... ORDER BY ... LIMIT 2)`` read its LIMIT as a subquery's: top_k None."""
    psycopg = pytest.importorskip("psycopg")
    traced = _install(tmp_path, "pgvector")
    search = "SELECT id, content, embedding <-> %s::vector AS distance FROM items ORDER BY 3 LIMIT {}"
    with psycopg.connect(postgres) as conn:
        rows = conn.execute(f"({search.format(2)})", ("[1,0,0]",)).fetchall()
        conn.execute(f" ( ({search.format('%s')}) ) ;", ("[1,0,0]", 1)).fetchall()
        conn.execute(f"({search.format(2)}) UNION ALL ({search.format(1)})", ("[1,0,0]", "[0,1,0]")).fetchall()
    assert [r[0] for r in rows] == [1, 2]
    records = traced.records()
    assert [(r["top_k"], r["doc_count"], r["metadata"]["collection"]) for r in records] == [
        (2, 2, "items"), (1, 1, "items"), (None, 3, "items")]  # a union's rows: no one LIMIT's
    assert [(d["id"], d["content"]) for d in records[0]["output"]] == [("1", "alpha"), ("2", "beta")]
