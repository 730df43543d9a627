"""Qdrant (qdrant-client, sync and async): ``query_points``, ``query_points_groups`` and
``query_batch_points`` become retrievals, ``search``/``search_batch`` too where the installed
client still has them; ``upsert``, ``upload_points``, ``upload_collection``, ``delete``, the payload
and vector updates (``set_payload``, ``overwrite_payload``, ``delete_payload``, ``clear_payload``,
``update_vectors``, ``delete_vectors``) and ``batch_update_points`` (its operations by kind in
``metadata.operations``) become spans with counts, and the filter selecting their points (or an
``update_filter``) as ``metadata.filter``. A query that is not a vector, text or point id
(``RecommendQuery``, ``FusionQuery``, a sparse vector, a multivector, ...) records its kind as
``metadata.query_type``, a fusion's kind as ``metadata.fusion`` (``rrf``, ``dbsf``; an
``RrfQuery``'s ``k`` as ``metadata.rrf_k``, its prefetches' ``weights`` as
``metadata.rrf_weights``), a nearest query's MMR (``NearestQuery(mmr=...)``:
its hits in MMR's order, not best first) as ``metadata.mmr``, a ``TextQuery`` (BM25 over the
payload field ``using``) its text as the query and ``text`` as its kind; the named vector searched
as ``metadata.using``, and
each prefetch (the stages whose results the query re-ranks or fuses: their ``using``, ``limit``,
filter and query) in ``metadata.prefetch``; a ``score_threshold`` and a page's ``offset`` in
metadata too. A read or write kept to shard keys (custom sharding, often one shard per tenant:
``shard_key_selector``; a batch's request's ``shard_key``) records them as ``metadata.shard_key``.
A batch describes each of its first 100 requests the same way in ``metadata.requests`` (their
counts are its ``doc_counts``); the limit, filter, texts
or vector size all its requests share are the retrieval's ``top_k``, filter, query and
``metadata.vector_dimensions``.
Scores are Qdrant's, best first (but an MMR query's): similarities (higher is closer) for
``Cosine`` and ``Dot`` collections, distances (lower is closer) for ``Euclid`` and ``Manhattan``
ones; a fusion's are its own ranks' scores. A nearest-neighbour query of a dense vector records its distance as
``metadata.metric`` (``cosine``, ``inner_product``, ``l2``, ``l1``) where the client holds the
collection itself (local mode, in memory or on disk); a server's is not looked up (it would cost
a request).

``retrieve`` (points by id) and ``scroll`` (a page of a filtered listing) return stored points
unranked: retrievals with ``metadata.operation``, the ids asked for (``metadata.ids``) or the
filter, ``scroll``'s ``limit`` as ``top_k``, and the points without scores. A ``scroll`` page
records where the next one starts (``metadata.next_page_offset``, absent on the last page), so
the pages of one listing can be told apart. ``count`` is not recorded: it returns a number, no
points to look at.

A grouped search records its groups' hits in the store's order, each with ``metadata.group`` (the
group's id), the number of groups (``metadata.groups``) and of hits in each (``doc_counts``). With
``with_lookup``, the first hit of each group whose lookup was found also has ``metadata.lookup``:
that point's id and payload (its first keys, values cut short), recorded as content.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from numbers import Real
from typing import Any
from uuid import UUID

from ..._internal import count
from ..base import Integration
from ..documents import CONTENT_CHARS, MAX_DOCUMENTS, document, record_id
from ._common import Batch, Count, Describe, Groups, Page, argument, requested, search_wrapper, write_wrapper

_TEXT_KEYS = ("text", "content", "page_content", "document")
_PAYLOAD_KEYS = 20
#: Prefetches described per query.
_PREFETCHES = 10
#: Requests of a batch described one by one (as many as its ``doc_counts`` counts).
_REQUESTS = MAX_DOCUMENTS
#: Qdrant's ``limit`` when a request gives none.
_LIMIT = 10
#: Qdrant's distances by the names the other stores' metrics have.
_METRICS = {"Cosine": "cosine", "Dot": "inner_product", "Euclid": "l2", "Manhattan": "l1"}
_LOCAL = ("QdrantLocal", "AsyncQdrantLocal")


def _query_fields(query: Any) -> dict[str, Any]:
    if isinstance(query, int | str | UUID):  # a point's id: the search is by that point's vector
        return {"query": f"id:{query}"}
    text = getattr(query, "text", None)
    if type(query).__name__ == "TextQuery":  # BM25 over the text index of the payload field ``using``
        return {"query": getattr(text, "query", text), "metadata": {"query_type": "text"}}
    if isinstance(text, str):  # a Document, embedded into the vector ``using``
        return {"query": text}
    nearest = getattr(query, "nearest", None)  # models.NearestQuery wraps the vector
    if nearest is not None:
        return _diversified(_query_fields(nearest), getattr(query, "mmr", None))
    shape = getattr(query, "shape", None)  # a numpy vector, or a multivector's rows
    if isinstance(shape, tuple) and len(shape) in (1, 2):
        return _vector(int(shape[-1]), len(shape) == 2)
    if isinstance(query, list | tuple) and query:
        first = query[0]
        if isinstance(first, Real):  # numpy's floats too
            return _vector(len(query), False)
        if isinstance(first, list | tuple) or len(getattr(first, "shape", ())) == 1:
            return _vector(len(first), True)
    kind = type(query).__name__
    if kind.endswith("Query"):  # RecommendQuery(recommend=...), FusionQuery(fusion=...): named by their field
        query_type = next(iter(getattr(type(query), "model_fields", None) or ()), kind)
        return {"metadata": {"query_type": query_type, **_fusion(query)}}
    if kind == "SparseVector":
        return {"metadata": {"query_type": "sparse"}}
    return {}


def _diversified(fields: dict[str, Any], mmr: Any) -> dict[str, Any]:
    """``fields`` of a nearest-neighbour query, with its ``Mmr`` (maximal marginal relevance:
    ``diversity``, ``candidates_limit``) as ``metadata.mmr``: its hits are then in the order MMR
    picks them from the candidates, their scores (still the vectors') not best first."""
    if mmr is not None:
        fields.setdefault("metadata", {})["mmr"] = _filter(mmr)
    return fields


def _fusion(query: Any) -> dict[str, Any]:
    """How a fusion query merges its prefetches' results: ``fusion`` (``rrf``, ``dbsf``), and the
    ``k`` of a parameterised ``RrfQuery`` as ``rrf_k``, its prefetches' weights (the first
    ``_PREFETCHES``, as many as are described) as ``rrf_weights``."""
    fusion = getattr(query, "fusion", None)  # FusionQuery(fusion=Fusion.RRF)
    if fusion is not None:
        return {"fusion": getattr(fusion, "value", fusion)}
    rrf = getattr(query, "rrf", None)  # RrfQuery(rrf=Rrf(k=60))
    if rrf is None:
        return {}
    fields: dict[str, Any] = {"fusion": "rrf"}
    if (k := getattr(rrf, "k", None)) is not None:
        fields["rrf_k"] = k
    if isinstance(weights := getattr(rrf, "weights", None), list | tuple):  # one per prefetch, as described
        fields["rrf_weights"] = list(islice(weights, _PREFETCHES))
    return fields


def _vector(dimensions: int, multivector: bool) -> dict[str, Any]:
    metadata: dict[str, Any] = {"vector_dimensions": dimensions}
    if multivector:  # several vectors (ColBERT-style late interaction), each of ``dimensions``
        metadata["query_type"] = "multivector"
    return {"metadata": metadata}


def _prefetches(prefetch: Any) -> list[dict[str, Any]]:
    """What each of the first ``_PREFETCHES`` prefetches asks (a query's first stages, whose
    results its own query re-ranks or fuses), as ``_stage`` describes it."""
    return [_stage(stage, _query_fields(getattr(stage, "query", None)))
            for stage in islice(prefetch if isinstance(prefetch, list | tuple) else [prefetch], _PREFETCHES)]


def _stage(stage: Any, fields: dict[str, Any], limit: int | None = None, filtered: bool = True) -> dict[str, Any]:
    """What a prefetch or a batch's request asks (``fields``: its query's): its vector (``using``),
    ``limit`` (``limit`` when it gives none), filter (unless not ``filtered``), score threshold,
    offset, a request's ``shard_key``, query, and how many prefetches of its own it has."""
    nested = getattr(stage, "prefetch", None)
    given = getattr(stage, "limit", None)
    entry = {"using": getattr(stage, "using", None), "limit": limit if given is None else given,
             "filter": _filter(getattr(stage, "filter", None)) if filtered else None, "score_threshold": getattr(stage, "score_threshold", None),
             "offset": getattr(stage, "offset", None) or None, "shard_key": _filter(getattr(stage, "shard_key", None)),
             "query": fields.get("query"), **fields.get("metadata", {}),
             "prefetch": len(nested) if isinstance(nested, list | tuple) else 1 if nested is not None else None}
    return {k: v for k, v in entry.items() if v is not None}


def _metric(instance: Any, collection: Any, using: Any) -> str | None:
    """The distance of the dense vector ``using`` (None: the unnamed one) names, if the client
    holds the collection itself (local mode): a dictionary lookup, never a request."""
    local = getattr(instance, "_client", None)
    if type(local).__name__ not in _LOCAL or not isinstance(collection, str):
        return None
    aliases = getattr(local, "aliases", None) or {}
    found = (getattr(local, "collections", None) or {}).get(aliases.get(collection, collection))
    vectors = getattr(getattr(found, "config", None), "vectors", None)
    if isinstance(vectors, dict):  # named vectors
        vectors = vectors.get(using if isinstance(using, str) else "")
    elif using:  # a sparse vector's name: the collection's one dense vector has none
        return None
    distance = getattr(vectors, "distance", None)
    return _METRICS.get(getattr(distance, "value", distance)) if distance is not None else None


def _searched_metric(instance: Any, collection: Any, query: Any, using: Any, fields: dict[str, Any]) -> str | None:
    """``_metric`` for a nearest-neighbour query (a vector, multivector, point id or text), whose
    scores are the vectors' distances; None for the others (recommend, fusion, ...)."""
    if query is None or fields.get("metadata", {}).get("query_type") not in (None, "multivector"):
        return None
    return _metric(instance, collection, using)


def _filter(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(exclude_none=True) if callable(dump) else value


def _sharded(fields: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``fields`` with the shard keys a call is kept to (its ``shard_key_selector``, looked at only
    if given) as ``metadata.shard_key``: with custom sharding, often the tenant whose points they are."""
    if "shard_key_selector" in kwargs and (shard_key := kwargs["shard_key_selector"]) is not None:
        fields.setdefault("metadata", {})["shard_key"] = _filter(shard_key)
    return fields


def _described(instance: Any, args: Any, kwargs: Any, query_at: int, filter_at: int,
               limit_at: int) -> dict[str, Any]:
    """A universal query's fields: ``query``, then ``using`` and ``prefetch`` right after it;
    ``score_threshold`` (fewer results than ``top_k`` may pass it) four after ``limit``."""
    fields = {"collection": argument(args, kwargs, "collection_name", 0),
              "top_k": argument(args, kwargs, "limit", limit_at, 10),
              "filter": _filter(argument(args, kwargs, "query_filter", filter_at))}
    query = argument(args, kwargs, "query", query_at)
    fields.update(_query_fields(query))
    using, prefetch = argument(args, kwargs, "using", query_at + 1), argument(args, kwargs, "prefetch", query_at + 2)
    if isinstance(using, str):
        fields.setdefault("metadata", {})["using"] = using
    if prefetch is not None:
        fields.setdefault("metadata", {})["prefetch"] = _prefetches(prefetch)
    if (metric := _searched_metric(instance, fields["collection"], query, using, fields)) is not None:
        fields.setdefault("metadata", {})["metric"] = metric
    if (threshold := argument(args, kwargs, "score_threshold", limit_at + 4)) is not None:
        fields.setdefault("metadata", {})["score_threshold"] = threshold
    return _sharded(fields, kwargs)


def _describe_query(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``query_points(collection_name, query, using, prefetch, query_filter, search_params, limit,
    offset, ...)``: a page after the first records its ``offset``."""
    fields = _described(instance, args, kwargs, 1, 4, 6)
    if offset := argument(args, kwargs, "offset", 7):
        fields.setdefault("metadata", {})["offset"] = offset
    return fields


def _describe_groups(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``query_points_groups(collection_name, group_by, query, using, prefetch, query_filter,
    search_params, limit, group_size, ...)``: ``limit`` (``top_k``) counts groups."""
    fields = _described(instance, args, kwargs, 2, 5, 7)
    fields.setdefault("metadata", {}).update(group_by=argument(args, kwargs, "group_by", 1),
                                             group_size=argument(args, kwargs, "group_size", 8, 3))
    return fields


def _describe_search(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """The older ``search(collection_name, query_vector, ...)``: limit and filter by keyword."""
    fields = {"collection": argument(args, kwargs, "collection_name", 0), "top_k": kwargs.get("limit", 10),
              "filter": _filter(kwargs.get("query_filter"))}
    fields.update(_query_fields(argument(args, kwargs, "query_vector", 1)))
    return fields


def _describe_batch(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``query_batch_points(collection_name, requests)``: if they are a list or tuple (an iterator
    is the client's to consume; ``doc_counts`` still has one per query), the requests are counted
    (``queries``) and the first ``_REQUESTS`` described (``metadata.requests``, as ``_stage``);
    what all of them share is the retrieval's: their ``limit`` as ``top_k``, their filter (then not
    repeated in each request: a tenant's filter of many ids would crowd them out of the value size
    limit), their texts as the query, their vectors' dimensions, their metric."""
    requests = argument(args, kwargs, "requests", 1)
    collection = argument(args, kwargs, "collection_name", 0)
    fields: dict[str, Any] = {"collection": collection}
    if not isinstance(requests, list | tuple):
        return fields
    entries, metrics = [], set()
    first = getattr(requests[0], "filter", None) if requests else None
    shared = all(getattr(r, "filter", None) == first for r in requests)
    for index, request in enumerate(requests):
        query, using = getattr(request, "query", None), getattr(request, "using", None)
        described = _query_fields(query)
        metrics.add(_searched_metric(instance, collection, query, using, described))
        if index < _REQUESTS:
            entries.append(_stage(request, described, _LIMIT, not shared))
    metadata = fields["metadata"] = {"queries": len(requests), "requests": entries}
    if len(requests) > _REQUESTS:
        count("retrieval_requests_truncated", len(requests) - _REQUESTS)
    if requests and all(getattr(r, "limit", None) == getattr(requests[0], "limit", None) for r in requests):
        fields["top_k"] = entries[0]["limit"]
    if shared:
        fields["filter"] = _filter(first)
    if len(requests) == len(entries):  # all described
        texts = [e.get("query") for e in entries]
        if texts and all(isinstance(t, str) for t in texts):
            fields["query"] = texts
        dimensions = {e.get("vector_dimensions") for e in entries}
        if len(dimensions) == 1 and None not in dimensions:
            metadata["vector_dimensions"] = dimensions.pop()
    if len(metrics) == 1 and None not in metrics:  # the requests' scores all are of one metric
        metadata["metric"] = metrics.pop()
    return fields


def _describe_retrieve(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``retrieve(collection_name, ids, ...)``."""
    return requested(_sharded({"collection": argument(args, kwargs, "collection_name", 0)}, kwargs), "retrieve",
                     argument(args, kwargs, "ids", 1))


def _describe_scroll(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``scroll(collection_name, scroll_filter, limit, order_by, offset, ...)``."""
    fields = {"collection": argument(args, kwargs, "collection_name", 0),
              "top_k": argument(args, kwargs, "limit", 2, 10),
              "filter": _filter(argument(args, kwargs, "scroll_filter", 1))}
    return requested(_sharded(fields, kwargs), "scroll", None)


def _documents(points: list[Any], metadata: dict[str, Any] | None = None,
               lookup: Any = None) -> Iterator[dict[str, Any]]:
    """The points as documents, each with ``metadata``; the first also with its group's ``lookup``
    (built only if that document is recorded)."""
    for index, point in enumerate(points):
        payload = getattr(point, "payload", None) or {}
        content = next((payload[k] for k in _TEXT_KEYS if k in payload), None)
        extra = {**(metadata or {}), "lookup": _lookup(lookup)} if index == 0 and lookup is not None else metadata
        yield document(getattr(point, "id", None), getattr(point, "score", None), content, extra)


def _bounded(value: Any) -> Any:
    return value if isinstance(value, int | float | bool) or value is None else str(value)[:CONTENT_CHARS]


def _lookup(record: Any) -> dict[str, Any]:
    """A group's looked-up point: its id and its payload, bounded (the first keys, values cut
    short) as a document's content is: a lookup carries a group's details (a title, an author)."""
    payload = getattr(record, "payload", None) or {}
    return {"id": record_id(getattr(record, "id", None)),
            "payload": {str(k): _bounded(v) for k, v in islice(payload.items(), _PAYLOAD_KEYS)}}


def _points(response: Any) -> Batch:
    points = getattr(response, "points", response) or []  # query_points -> QueryResponse, search -> list
    return Batch(len(points), _documents(points))


def _query_results(response: Any, request: dict[str, Any]) -> list[Batch]:
    return [_points(response)]


def _group_results(response: Any, request: dict[str, Any]) -> Groups:
    """One batch per group, in the store's order; each document records its group's id."""
    groups = Groups()
    for group in getattr(response, "groups", None) or ():
        hits = getattr(group, "hits", None) or []
        lookup = getattr(group, "lookup", None)  # with_lookup: the group's point in another collection
        groups.append(Batch(len(hits), _documents(hits, {"group": getattr(group, "id", None)}, lookup)))
    return groups


def _scroll_results(response: Any, request: dict[str, Any]) -> Page:
    """``(points, next_page_offset)``."""
    points, next_offset = response
    return Page([_points(points)], next_offset)


def _batch_results(responses: Any, request: dict[str, Any]) -> list[Batch]:
    return [_points(r) for r in responses or ()]


def _describe_write(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    return _sharded({"collection": argument(args, kwargs, "collection_name", 0)}, kwargs)


def _count_points(instance: Any, args: Any, kwargs: Any) -> int | None:
    return _counted(argument(args, kwargs, "points", 1))


def _counted(points: Any) -> int | None:
    """How many points ``points`` names: a list of points or ids, a ``Batch``'s ids, a
    ``PointIdsList``'s; None for a filter (or an iterator, which counting would consume)."""
    ids = getattr(points, "ids", None)
    if isinstance(ids, list):
        return len(ids)
    points_list = getattr(points, "points", points)
    return len(points_list) if isinstance(points_list, list | tuple) else None


#: The writes on points, by the name and position of the argument naming their points: the
#: points themselves (``upsert``, ``update_vectors``) or a selector (ids, a ``PointIdsList``, a
#: ``Filter`` or ``FilterSelector``).
_WRITES = {"upsert": ("points", 1), "delete": ("points_selector", 1), "update_vectors": ("points", 1),
           "set_payload": ("points", 2), "overwrite_payload": ("points", 2), "delete_payload": ("points", 2),
           "clear_payload": ("points_selector", 1), "delete_vectors": ("points", 2)}


def _point_write(name: str, at: int) -> tuple[Describe, Count]:
    """How a write whose points are the argument ``name`` (at ``at``) is described and counted: a
    write selecting its points by a filter (or, ``update_filter``, only those matching it) records
    that filter as ``metadata.filter`` (a tenant's delete is told from a global one)."""
    def describe(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
        fields = _sharded({"collection": argument(args, kwargs, "collection_name", 0)}, kwargs)
        selector = argument(args, kwargs, name, at)
        kind = type(selector).__name__
        selected = kwargs.get("update_filter") if kind not in ("Filter", "FilterSelector") else (
            getattr(selector, "filter", None) if kind == "FilterSelector" else selector)
        if selected is not None:
            fields.setdefault("metadata", {})["filter"] = _filter(selected)
        return fields

    def counter(instance: Any, args: Any, kwargs: Any) -> int | None:
        return _counted(argument(args, kwargs, name, at))

    return describe, counter


def _describe_operations(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``batch_update_points(collection_name, update_operations)``: how many operations of each
    kind (``metadata.operations``: ``{"upsert": 2, "delete": 1}``), if they are a list or tuple."""
    fields: dict[str, Any] = {"collection": argument(args, kwargs, "collection_name", 0)}
    operations = argument(args, kwargs, "update_operations", 1)
    if isinstance(operations, list | tuple):  # UpsertOperation(upsert=...): named by its field
        fields["metadata"] = {"operations": dict(Counter(
            next(iter(getattr(type(o), "model_fields", None) or ()), type(o).__name__) for o in operations))}
    return fields


def _count_operations(instance: Any, args: Any, kwargs: Any) -> int | None:
    operations = argument(args, kwargs, "update_operations", 1)
    return len(operations) if isinstance(operations, list | tuple) else None


def _count_vectors(instance: Any, args: Any, kwargs: Any) -> int | None:
    """``upload_collection``'s count: its ids, or its vectors (a list, an array's rows, or the rows
    of each named array); None for an iterator, which counting would consume."""
    ids = argument(args, kwargs, "ids", 3)
    if isinstance(ids, list | tuple):
        return len(ids)
    vectors = argument(args, kwargs, "vectors", 1)
    if isinstance(vectors, dict):  # named vectors: {name: array}, one row per point
        vectors = next(iter(vectors.values()), None)
    if isinstance(vectors, list | tuple) or len(getattr(vectors, "shape", ())) > 1:
        return len(vectors)
    return None


class QdrantIntegration(Integration):
    name = "qdrant"
    distribution = "qdrant-client"
    module = "qdrant_client"
    supported = ">=1.9,<2"

    def _instrument(self) -> None:
        import qdrant_client

        for cls, asynchronous in (("QdrantClient", False), ("AsyncQdrantClient", True)):
            module = "qdrant_client"
            wrap = self.patcher.wrap
            # a client before 1.10 has no query API (``search`` is its query): not a changed API
            before_query = not hasattr(getattr(qdrant_client, cls), "query_points") and hasattr(
                getattr(qdrant_client, cls), "search")
            wrap(module, f"{cls}.query_points",
                 search_wrapper("qdrant", "query_points", _describe_query, _query_results, asynchronous),
                 optional=before_query)
            wrap(module, f"{cls}.query_points_groups",
                 search_wrapper("qdrant", "query_points_groups", _describe_groups, _group_results, asynchronous),
                 optional=True)
            wrap(module, f"{cls}.query_batch_points",
                 search_wrapper("qdrant", "query_batch_points", _describe_batch, _batch_results, asynchronous),
                 optional=before_query)
            wrap(module, f"{cls}.search",
                 search_wrapper("qdrant", "search", _describe_search, _query_results, asynchronous), optional=True)
            wrap(module, f"{cls}.search_batch",
                 search_wrapper("qdrant", "search_batch", _describe_batch, _batch_results, asynchronous),
                 optional=True)
            for write, (name, at) in _WRITES.items():
                wrap(module, f"{cls}.{write}", write_wrapper("qdrant", write, *_point_write(name, at), asynchronous),
                     optional=write not in ("upsert", "delete"))
            wrap(module, f"{cls}.batch_update_points", write_wrapper(
                "qdrant", "batch_update_points", _describe_operations, _count_operations, asynchronous), optional=True)
            for upload, counter in (("upload_points", _count_points), ("upload_collection", _count_vectors)):
                # uploads send their own batches (upsert is not called); the async client's are synchronous
                coroutine = inspect.iscoroutinefunction(getattr(getattr(qdrant_client, cls), upload, None))
                wrap(module, f"{cls}.{upload}", write_wrapper("qdrant", upload, _describe_write, counter, coroutine),
                     optional=True)
            wrap(module, f"{cls}.retrieve",
                 search_wrapper("qdrant", "retrieve", _describe_retrieve, _query_results, asynchronous))
            wrap(module, f"{cls}.scroll",
                 search_wrapper("qdrant", "scroll", _describe_scroll, _scroll_results, asynchronous))


INTEGRATION = QdrantIntegration()
