"""FAISS (faiss-cpu): ``Index.search`` and ``IndexBinary.search`` on the Python wrapper become
retrievals.

faiss installs a separate ``search`` replacement on each index class at import; each of those
present at install time is wrapped, binary (Hamming) indexes included. Distances are recorded as
scores, ids of -1 (no result) are left out, and a batch of queries records one count per query.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..base import Integration
from ._common import Batch, argument, document, search_wrapper


def _describe(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    queries = argument(args, kwargs, "x", 0)
    shape = getattr(queries, "shape", None)
    dimensions = getattr(instance, "d", None)  # in bits for a binary index, whose rows are bytes
    if not isinstance(dimensions, int):
        dimensions = int(shape[1]) if shape is not None and len(shape) > 1 else None
    return {"collection": type(instance).__name__, "top_k": argument(args, kwargs, "k", 1),
            "metadata": {"queries": int(shape[0]) if shape else None, "vector_dimensions": dimensions}}


def _row(distances: Any, ids: Any) -> Iterator[dict[str, Any]]:
    return (document(int(i), float(d)) for d, i in zip(distances, ids, strict=True) if i != -1)


def _results(response: Any, request: dict[str, Any]) -> list[Batch]:
    distances, ids = response
    counts = (ids != -1).sum(axis=1).tolist()  # numpy: no per-result Python work beyond those recorded
    return [Batch(n, _row(distances[q], ids[q])) for q, n in enumerate(counts)]


class FaissIntegration(Integration):
    name = "faiss"
    distribution = "faiss-cpu"
    module = "faiss"
    supported = ">=1.7"

    def _instrument(self) -> None:
        import faiss

        wrapper = search_wrapper("faiss", "search", _describe, _results)
        bases = (faiss.Index, faiss.IndexBinary)
        for value in list(vars(faiss).values()):
            if isinstance(value, type) and issubclass(value, bases) and "search" in value.__dict__:
                self.patcher.wrap_object(value, "search", wrapper)


INTEGRATION = FaissIntegration()
