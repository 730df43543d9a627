"""FAISS, for real: an index's metric is named, and its range-search neighbours ordered best
first, as the installed faiss defines the metric (Jaccard is a similarity, higher being closer;
the number 25 is Gower's distance in faiss 1.15, ``abs_inner_product`` in other releases); and an
IVF search of inverted lists given beforehand (``search_preassigned``) is a retrieval too."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import Traced

faiss = pytest.importorskip("faiss")
pytestmark = pytest.mark.integrations("faiss")


def test_a_jaccard_range_search_records_the_most_similar_first(traced: Traced) -> None:
    """Jaccard was recorded as ``metric_23`` and its neighbours least similar first (``top_score``
    the worst of them), as if it were a distance."""
    index = faiss.IndexFlat(3, faiss.METRIC_Jaccard)
    index.add(np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 1]], dtype="float32"))
    limits, distances, ids = index.range_search(np.array([[1, 1, 0]], dtype="float32"), 0.1)
    assert (limits.tolist(), ids.tolist()) == ([0, 3], [0, 1, 3])  # faiss's own order: not ranked
    record = traced.one()
    assert record["metadata"]["metric"] == "jaccard"
    assert record["output"] == [{"id": 0, "score": 1.0}, {"id": 3, "score": float(distances[2])},
                                {"id": 1, "score": 0.5}]
    assert record["metadata"]["top_score"] == 1.0


@pytest.mark.skipif(not hasattr(faiss, "METRIC_GOWER"), reason="a faiss without Gower's distance")
def test_a_gower_range_search_records_the_closest_first(traced: Traced) -> None:
    """Gower's distance (25 in this faiss) was named ``abs_inner_product`` and ranked as a
    similarity: its farthest neighbour recorded first."""
    index = faiss.IndexFlat(2, faiss.METRIC_GOWER)
    index.add(np.array([[0.1, 0.2], [0.9, 0.8], [0.5, 0.5]], dtype="float32"))
    _, distances, ids = index.range_search(np.array([[0.1, 0.2]], dtype="float32"), 0.9)
    assert ids.tolist() == [0, 1, 2]
    record = traced.one()
    assert record["metadata"]["metric"] == "gower"
    assert record["output"] == [{"id": 0, "score": 0.0}, {"id": 2, "score": float(distances[2])},
                                {"id": 1, "score": float(distances[1])}]


def _ivf() -> tuple[object, np.ndarray, np.ndarray, np.ndarray]:
    """An IVF index of 20 vectors in 2 lists, a query, and its nearest list (as a coordinator
    sharding a search computes it once for all the shards)."""
    rng = np.random.default_rng(5)
    vectors = rng.random((20, 3), dtype="float32")
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(3), 3, 2)
    index.train(vectors)
    index.add(vectors)
    query = vectors[:1]
    Dq, Iq = index.quantizer.search(query, 1)
    return index, query, Iq, Dq


def test_a_search_of_given_inverted_lists_is_recorded(traced: Traced) -> None:
    """``search_preassigned`` (the lists to visit given) was not recorded at all."""
    index, query, Iq, Dq = _ivf()
    distances, ids = index.search_preassigned(query, 30, Iq, Dq)
    found = [(int(i), float(d)) for d, i in zip(distances[0], ids[0], strict=True) if i != -1]
    assert 0 < len(found) < 30 and ids[0][-1] == -1  # one list of two: fewer than k
    (record,) = [r for r in traced.records() if r["name"] == "faiss.search_preassigned"]
    assert (record["type"], record["top_k"], record["doc_count"]) == ("retriever", 30, len(found))
    assert record["output"] == [{"id": i, "score": d} for i, d in found]
    assert (record["metadata"]["metric"], record["metadata"]["queries"]) == ("l2", 1)


def test_a_range_search_of_given_inverted_lists_is_recorded(traced: Traced) -> None:
    index, query, Iq, Dq = _ivf()
    limits, distances, ids = index.range_search_preassigned(query, 0.5, Iq, Dq)
    (record,) = [r for r in traced.records() if r["name"] == "faiss.range_search_preassigned"]
    order = distances.argsort(kind="stable")
    assert record["doc_count"] == int(limits[-1]) > 0 and record["metadata"]["radius"] == 0.5
    assert record["output"] == [{"id": int(ids[o]), "score": float(distances[o])} for o in order]
