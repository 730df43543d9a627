"""FAISS (faiss-cpu): ``search`` and ``range_search`` of ``Index`` and ``IndexBinary`` on the
Python wrapper become retrievals.

faiss installs separate ``search``/``range_search`` replacements on each index class at import;
each of those present at install time is wrapped, binary (Hamming) indexes included. Distances are
recorded as scores, ids of -1 (no result) are left out, and a batch of queries records one count
per query. A range search records its radius and metric, and each query's neighbours best first.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any

from ..base import Integration
from ..documents import document
from ._common import Batch, argument, search_wrapper

#: faiss's metric numbers (``faiss.METRIC_*``) by name; the inner products rank higher first.
_METRICS = {0: "inner_product", 1: "l2", 2: "l1", 3: "linf", 25: "abs_inner_product"}
_SIMILARITIES = ("inner_product", "abs_inner_product")


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


def _describe_range(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``range_search(x, thresh)``: every neighbour within ``thresh``, however many (no ``top_k``)."""
    fields = _describe(instance, args, kwargs)
    metric = getattr(instance, "metric_type", None)
    if type(instance).__name__.startswith("IndexBinary"):  # its metric_type says L2; it measures Hamming
        metric = "hamming"
    fields["top_k"] = None
    fields["metadata"].update(radius=float(argument(args, kwargs, "thresh", 1)),
                              metric=_METRICS.get(metric, metric if isinstance(metric, str) else f"metric_{metric}"))
    return fields


def _range_row(distances: Any, ids: Any, similarity: bool) -> Iterator[dict[str, Any]]:
    """One query's neighbours best first (sorted only if read): faiss returns them in no order,
    and a retrieval records its documents best first (its ``top_score`` is the first)."""
    order = distances.argsort(kind="stable")
    if similarity:
        order = order[::-1]
    yield from _row(distances[order], ids[order])


def _range_results(response: Any, request: dict[str, Any]) -> list[Batch]:
    limits, distances, ids = response  # query q's neighbours are at limits[q]:limits[q + 1]
    similarity = request.get("metadata", {}).get("metric") in _SIMILARITIES
    bounds = limits.tolist()
    return [Batch(end - start, _range_row(distances[start:end], ids[start:end], similarity))
            for start, end in pairwise(bounds)]


class FaissIntegration(Integration):
    name = "faiss"
    distribution = "faiss-cpu"
    module = "faiss"
    supported = ">=1.7"

    def _instrument(self) -> None:
        import faiss

        wrappers = {"search": search_wrapper("faiss", "search", _describe, _results),
                    "range_search": search_wrapper("faiss", "range_search", _describe_range, _range_results)}
        bases = (faiss.Index, faiss.IndexBinary)
        for value in list(vars(faiss).values()):
            if isinstance(value, type) and issubclass(value, bases):
                for method in wrappers.keys() & value.__dict__.keys():
                    self.patcher.wrap_object(value, method, wrappers[method])


INTEGRATION = FaissIntegration()
