"""FAISS: a range search finding very many neighbours (a loose radius, a de-duplication pass) is
recorded without sorting all of them on the caller's thread: its first ``MAX_DOCUMENTS`` best
first, as a full stable sort would give them, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from autotrace.integrations.documents import MAX_DOCUMENTS
from autotrace.integrations.vectorstores.faiss import _range_row
from tests.helpers import Traced

faiss = pytest.importorskip("faiss")
pytestmark = pytest.mark.integrations("faiss")


def _best_first(distances: np.ndarray, ids: np.ndarray, similarity: bool) -> list[dict]:
    order = distances.argsort(kind="stable")
    order = order[::-1] if similarity else order
    return [{"id": int(ids[o]), "score": float(distances[o])} for o in order[:MAX_DOCUMENTS]]


def test_a_row_of_many_neighbours_yields_only_those_recorded() -> None:
    """Every neighbour of a query was sorted (a million: more time than faiss took to find them)
    to record its first hundred; now only those are ordered, the same ones in the same order."""
    rng = np.random.default_rng(7)
    distances = rng.integers(0, 9, 5000).astype("float32")  # many ties, as Hamming distances have
    ids = rng.permutation(5000).astype("int64")
    for similarity in (False, True):
        found = list(_range_row(distances, ids, similarity))
        assert found == _best_first(distances, ids, similarity)
        assert len(found) == MAX_DOCUMENTS


@pytest.mark.parametrize("kind", ["binary", "inner_product"])
def test_a_range_search_of_many_neighbours_records_the_best(traced: Traced, kind: str) -> None:
    rng = np.random.default_rng(3)
    if kind == "binary":
        index = faiss.IndexBinaryFlat(32)
        index.add(rng.integers(0, 256, (3000, 4), dtype="uint8"))
        query, radius = np.zeros((1, 4), dtype="uint8"), 16
    else:
        index = faiss.IndexFlatIP(4)
        index.add(rng.random((3000, 4), dtype="float32"))
        query, radius = np.ones((1, 4), dtype="float32"), 0.5
    limits, distances, ids = index.range_search(query, radius)
    (record,) = traced.records()
    assert limits.tolist() == [0, len(ids)] and len(ids) > 10 * MAX_DOCUMENTS
    assert record["doc_count"] == len(ids) and record["metadata"]["documents_recorded"] == MAX_DOCUMENTS
    assert record["output"] == _best_first(distances, ids, kind == "inner_product")
