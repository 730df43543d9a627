"""FAISS (faiss-cpu): ``search`` and ``range_search`` of ``Index`` and ``IndexBinary`` on the
Python wrapper become retrievals, as do an IVF index's ``search_preassigned`` and
``range_search_preassigned`` (the inverted lists to visit given, as a sharded search does).

faiss installs separate replacements of these methods on each index class at import;
each of those present at install time is wrapped, binary (Hamming) indexes included. Distances are
recorded as scores (similarities for an inner-product or Jaccard index: higher is closer), with
the index's metric as ``metadata.metric``; ids of -1 (no result) are left out. A batch of queries
records one count per query (``doc_counts``, for its first ``MAX_DOCUMENTS`` queries: a search of
thousands costs no Python work per query). A range search records its radius, and each query's
neighbours best first.

A search kept to some ids (``params=SearchParameters(sel=IDSelector...)``, an IVF's or HNSW's
parameters too) records its selector as ``metadata.id_filter``: its ``kind`` (``batch``,
``array``, ``range``, ``bitmap``, ``not``, ``and``, ...), how many ids it admits (``size``) where
that is cheap to know (a bitmap's up to ``_BITMAP_BYTES``; a batch's if made while installed: faiss
keeps no count of it), and the selectors a ``not``, ``and``, ``or``, ``xor`` combines (``of``),
never the ids themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from itertools import pairwise
from typing import Any

from ..._internal import guarded_failure
from ..base import Integration
from ..documents import MAX_DOCUMENTS, document
from ._common import Batch, argument, search_wrapper


@cache
def _metrics() -> tuple[dict[int, str], frozenset[str]]:
    """The installed faiss's metrics by number, named as its ``METRIC_*`` (lower case), and those
    that are similarities (higher is closer: the inner product, Jaccard), as it says: the numbers
    after 24 mean different metrics in different releases."""
    import faiss

    names = {value: name.removeprefix("METRIC_").lower() for name, value in vars(faiss).items()
             if name.startswith("METRIC_") and isinstance(value, int)}
    similar = getattr(faiss, "is_similarity_metric", lambda metric: metric == 0)  # an older faiss: IP only
    return names, frozenset(name for value, name in names.items() if similar(value))


def _metric(instance: Any) -> str | None:
    """The index's metric by name: its scores are distances (lower is closer) but for the
    similarities (``_metrics``)."""
    if type(instance).__name__.startswith("IndexBinary"):  # its metric_type says L2; it measures Hamming
        return "hamming"
    metric = getattr(instance, "metric_type", None)
    return _metrics()[0].get(metric, metric if isinstance(metric, str | None) else f"metric_{metric}")


#: The attribute of an ``IDSelectorBatch`` made while installed holding how many ids it was given.
_SIZE = "_autotrace_size"
#: Selectors combined inside one another described this deep.
_SELECTOR_DEPTH = 3
#: A bitmap's members are counted up to this many bytes (a microsecond or two a kilobyte).
_BITMAP_BYTES = 16384


def _remember_size(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``IDSelectorBatch(ids)`` or ``(n, pointer)``: made, then told how many ids it holds."""
    made = wrapped(*args, **kwargs)
    try:
        size = args[0] if len(args) == 2 else len(args[0])
        setattr(instance, _SIZE, int(size))
    except Exception as exc:  # the selector as faiss made it, its size unknown
        guarded_failure("faiss", exc)
    return made


def _typed(owner: Any, proxy: Any) -> Any:
    """The selector ``proxy`` points to as the caller made it (SWIG hands a field back as a bare
    ``IDSelector``): the one among those ``owner`` keeps alive with the same pointer."""
    this = int(proxy.this)
    refs = getattr(owner, "_sp_field_refs", None)  # faiss 1.9+: SearchParameters' fields by name
    kept = [*(refs.values() if isinstance(refs, dict) else ())]
    for ref in getattr(owner, "referenced_objects", None) or ():  # a combination's: its arguments, a tuple
        kept.extend(ref if isinstance(ref, tuple | list) else (ref,))
    return next((ref for ref in kept if getattr(ref, "this", None) is not None and int(ref.this) == this), proxy)


def _kind(selector: Any) -> str:
    """A selector's kind, from its faiss class (a subclass the application made: its faiss base's)."""
    for kind in type(selector).__mro__:
        if kind.__module__.partition(".")[0] == "faiss" and kind.__name__.startswith("IDSelector"):
            return kind.__name__.removeprefix("IDSelector").lower() or "unknown"
    return "unknown"


def _selector(selector: Any, depth: int = 0) -> dict[str, Any]:
    """A selector's kind, its size where cheap to know, and those it combines (``of``)."""
    kind = _kind(selector)
    found: dict[str, Any] = {"kind": kind}
    size = None
    if kind == "range":
        size = max(0, int(selector.imax) - int(selector.imin))
    elif kind == "array":
        size = int(selector.n)
    elif kind == "batch":
        size = getattr(selector, _SIZE, None)
    elif kind == "bitmap" and 0 <= selector.n <= _BITMAP_BYTES:
        import faiss
        import numpy as np

        size = int(np.unpackbits(faiss.rev_swig_ptr(selector.bitmap, selector.n)).sum())
    elif kind in ("not", "and", "or", "xor") and depth < _SELECTOR_DEPTH:
        parts = (selector.sel,) if kind == "not" else (selector.lhs, selector.rhs)
        found["of"] = [_selector(_typed(selector, part), depth + 1) for part in parts if part is not None]
    if size is not None:
        found["size"] = size
    return found


def _id_filter(params: Any) -> dict[str, Any] | None:
    """The selector of a search's ``params`` (``SearchParameters(sel=...)``), as ``_selector``."""
    selector = getattr(params, "sel", None) if params is not None else None
    if selector is None:
        return None
    try:
        return _selector(_typed(params, selector))
    except Exception as exc:  # a selector this faiss makes otherwise: its kind only
        guarded_failure("faiss", exc)
        return {"kind": "unknown"}


def _describe(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    queries = argument(args, kwargs, "x", 0)
    shape = getattr(queries, "shape", None)
    dimensions = getattr(instance, "d", None)  # in bits for a binary index, whose rows are bytes
    if not isinstance(dimensions, int):
        dimensions = int(shape[1]) if shape is not None and len(shape) > 1 else None
    metadata = {"queries": int(shape[0]) if shape else None, "vector_dimensions": dimensions,
                "metric": _metric(instance)}
    if "params" in kwargs and (id_filter := _id_filter(kwargs["params"])) is not None:
        metadata["id_filter"] = id_filter
    return {"collection": type(instance).__name__, "top_k": argument(args, kwargs, "k", 1), "metadata": metadata}


def _row(distances: Any, ids: Any) -> Iterator[dict[str, Any]]:
    return (document(int(i), float(d)) for d, i in zip(distances, ids, strict=True) if i != -1)


def _found(distances: Any, ids: Any) -> Iterator[dict[str, Any]]:
    """The results of several queries, query after query, the -1 ids left out (read only if asked for)."""
    found = ids != -1
    yield from _row(distances[found], ids[found])


def _results(response: Any, request: dict[str, Any]) -> list[Batch]:
    """A batch per query for the first ``MAX_DOCUMENTS`` queries, one for all the others: no
    per-query Python work for a search of thousands of queries (numpy counts their results)."""
    distances, ids = response
    counts = (ids[:MAX_DOCUMENTS] != -1).sum(axis=1).tolist()
    batches = [Batch(n, _row(distances[q], ids[q])) for q, n in enumerate(counts)]
    if len(ids) > MAX_DOCUMENTS:
        rest = slice(MAX_DOCUMENTS, None)
        batches.append(Batch(int((ids[rest] != -1).sum()), _found(distances[rest], ids[rest]),
                             len(ids) - MAX_DOCUMENTS))
    return batches


def _describe_range(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``range_search(x, thresh)``: every neighbour within ``thresh``, however many (no ``top_k``)."""
    fields = _describe(instance, args, kwargs)
    fields["top_k"] = None
    fields["metadata"]["radius"] = float(argument(args, kwargs, "thresh", 1))
    return fields


def _range_row(distances: Any, ids: Any, similarity: bool) -> Iterator[dict[str, Any]]:
    """One query's first ``MAX_DOCUMENTS`` neighbours best first (sorted only if read): faiss
    returns them in no order, and a retrieval records its documents best first (its
    ``top_score`` is the first). Ties come as a stable sort, reversed for a similarity, puts them."""
    if similarity:
        distances, ids = distances[::-1], ids[::-1]
    for order in _best(-distances if similarity else distances):
        yield from _row(distances[order], ids[order])


def _best(keys: Any) -> Iterator[Any]:
    """The positions of the ``MAX_DOCUMENTS`` smallest ``keys`` in the order a stable sort gives,
    in parts, without sorting a whole long row (a range search may find millions of neighbours)."""
    bound = keys[keys.argpartition(MAX_DOCUMENTS - 1)[MAX_DOCUMENTS - 1]] if len(keys) > MAX_DOCUMENTS else None
    if bound is None or bound != bound:  # a short row, or too few numbers (NaN) to bound it
        yield keys.argsort(kind="stable")[:MAX_DOCUMENTS]
        return
    below = (keys < bound).nonzero()[0]
    yield below[keys[below].argsort(kind="stable")]
    yield (keys == bound).nonzero()[0][:MAX_DOCUMENTS - len(below)]  # those tied with the last, as fit


def _range_rest(limits: Any, distances: Any, ids: Any, similarity: bool) -> Iterator[dict[str, Any]]:
    """The neighbours of the queries ``limits`` bounds, query after query (read only if asked for)."""
    for q in (limits[1:] > limits[:-1]).nonzero()[0].tolist():  # the queries with neighbours
        start, end = int(limits[q]), int(limits[q + 1])
        yield from _range_row(distances[start:end], ids[start:end], similarity)


def _range_results(response: Any, request: dict[str, Any]) -> list[Batch]:
    """As ``_results``: a batch per query for the first ``MAX_DOCUMENTS``, one for the others."""
    limits, distances, ids = response  # query q's neighbours are at limits[q]:limits[q + 1]
    similarity = request.get("metadata", {}).get("metric") in _metrics()[1]
    bounds = limits[:MAX_DOCUMENTS + 1].tolist()
    batches = [Batch(end - start, _range_row(distances[start:end], ids[start:end], similarity))
               for start, end in pairwise(bounds)]
    if len(limits) > MAX_DOCUMENTS + 1:
        rest = limits[MAX_DOCUMENTS:]
        batches.append(Batch(int(rest[-1] - rest[0]), _range_rest(rest, distances, ids, similarity), len(rest) - 1))
    return batches


class FaissIntegration(Integration):
    name = "faiss"
    distribution = "faiss-cpu"
    module = "faiss"
    supported = ">=1.7"

    def _instrument(self) -> None:
        import faiss

        wrappers = {method: search_wrapper("faiss", method, describe, results)
                    for method, describe, results in (("search", _describe, _results),
                                                      ("range_search", _describe_range, _range_results),
                                                      ("search_preassigned", _describe, _results),
                                                      ("range_search_preassigned", _describe_range, _range_results))}
        if isinstance(getattr(faiss, "IDSelectorBatch", None), type):
            self.patcher.wrap_object(faiss.IDSelectorBatch, "__init__", _remember_size)
        bases = (faiss.Index, faiss.IndexBinary)
        for value in list(vars(faiss).values()):
            if isinstance(value, type) and issubclass(value, bases):
                for method in wrappers.keys() & value.__dict__.keys():
                    self.patcher.wrap_object(value, method, wrappers[method])


INTEGRATION = FaissIntegration()
