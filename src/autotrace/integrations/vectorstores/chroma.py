"""Chroma (chromadb): ``query`` and ``get`` of ``Collection`` and of ``AsyncCollection`` (the
``AsyncHttpClient``'s) become retrievals, with ``where`` as the filter and ``where_document`` in
metadata, as are the ``ids`` a query is restricted to (``metadata.ids``);
``add``/``upsert``/``update``/``delete`` become spans with counts, a ``delete`` with its ``where``
(``metadata.filter``), ``where_document``, its ``limit`` and how many it deleted
(``metadata.deleted``, where chromadb says).

A query's scores are Chroma's distances, lower being closer, whatever the collection's space,
recorded as ``metadata.metric``: ``l2`` (squared), ``cosine`` (1 - cosine similarity) or
``inner_product`` (1 - inner product).

A query of many texts records its first ``MAX_DOCUMENTS`` as the query and how many there are
(``metadata.queries``), and the counts of its first ``MAX_DOCUMENTS`` queries (``doc_counts``).

``get`` and ``peek`` return stored documents unranked: their retrievals record
``metadata.operation`` (the method's name), the ids asked for (``metadata.ids``), ``limit`` as
``top_k``, a page's ``metadata.offset``, and the documents without scores. ``count`` is not
recorded: it returns a number, no documents to look at."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain, islice, repeat, starmap
from typing import Any

from ..._internal import count
from ..base import Integration
from ..documents import MAX_DOCUMENTS, document
from ._common import Batch, Describe, argument, positions, requested, search_wrapper, with_ids, write_wrapper


def _query_describer(at: dict[str, int]) -> Describe:
    """What ``query(query_embeddings, query_texts, ..., n_results, where, ...)`` asks, its arguments
    found by position where ``at`` says (``ids``, added in chromadb 1.0, moved ``n_results`` and
    ``where``)."""
    def describe(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
        texts = argument(args, kwargs, "query_texts", at.get("query_texts", 1))
        embeddings = argument(args, kwargs, "query_embeddings", 0)
        fields: dict[str, Any] = {"collection": getattr(instance, "name", None),
                                  "top_k": argument(args, kwargs, "n_results", at.get("n_results"), 10),
                                  "filter": argument(args, kwargs, "where", at.get("where"))}
        if (space := _space(instance)) is not None:
            fields["metadata"] = {"metric": _METRICS.get(space, space)}
        _where_document(fields, argument(args, kwargs, "where_document", at.get("where_document")))
        with_ids(fields, argument(args, kwargs, "ids", at.get("ids")))  # chromadb 1.x: search only these
        if isinstance(texts, str):  # chroma takes one text as one query
            fields["query"] = texts
        elif texts:
            fields["query"] = texts[0] if len(texts) == 1 else _first_texts(fields, texts)
        elif embeddings is not None and len(embeddings):
            if hasattr(embeddings[0], "__len__"):
                fields.setdefault("metadata", {}).update(queries=len(embeddings),
                                                         vector_dimensions=len(embeddings[0]))
            else:  # one flat vector (a list or a 1-D array), which chroma takes as one query
                fields.setdefault("metadata", {}).update(queries=1, vector_dimensions=len(embeddings))
        return fields

    return describe


def _first_texts(fields: dict[str, Any], texts: list[str]) -> list[str]:
    """The first ``MAX_DOCUMENTS`` texts of a batch of queries (``metadata.queries``: how many), the
    others counted as ``retrieval_requests_truncated``."""
    fields.setdefault("metadata", {})["queries"] = len(texts)
    if len(texts) > MAX_DOCUMENTS:
        count("retrieval_requests_truncated", len(texts) - MAX_DOCUMENTS)
    return list(islice(texts, MAX_DOCUMENTS))


#: Chroma's spaces by the names the other stores' metrics have.
_METRICS = {"ip": "inner_product"}


def _space(collection: Any) -> str | None:
    """The collection's space (``l2``, ``cosine``, ``ip``): in its configuration (its HNSW or, on
    Chroma Cloud, SPANN index; ``hnsw_configuration`` before chromadb 1.0), or in its metadata
    (``hnsw:space``) where older collections have it."""
    configuration = getattr(collection, "configuration_json", None)
    for index in ("hnsw", "spann", "hnsw_configuration"):
        section = configuration.get(index) if isinstance(configuration, dict) else None
        if isinstance(section, dict) and isinstance(section.get("space"), str):
            return section["space"]
    metadata = getattr(collection, "metadata", None)
    space = metadata.get("hnsw:space") if isinstance(metadata, dict) else None
    return space if isinstance(space, str) else None


def _where_document(fields: dict[str, Any], where_document: Any) -> None:
    """The filter on the documents' text (``{"$contains": ...}``), beside ``where`` (on metadata)."""
    if where_document:
        fields.setdefault("metadata", {})["where_document"] = where_document


def _describe_get(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``get(ids, where, limit, offset, where_document, ...)``: a page after the first records its
    ``offset`` (as a Qdrant query does)."""
    fields = {"collection": getattr(instance, "name", None), "top_k": argument(args, kwargs, "limit", 2),
              "filter": argument(args, kwargs, "where", 1)}
    _where_document(fields, argument(args, kwargs, "where_document", 4))
    if offset := argument(args, kwargs, "offset", 3):
        fields.setdefault("metadata", {})["offset"] = offset
    return requested(fields, "get", argument(args, kwargs, "ids", 0))


def _describe_peek(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``peek(limit=10)``: the collection's first documents."""
    return requested({"collection": getattr(instance, "name", None),
                      "top_k": argument(args, kwargs, "limit", 0, 10)}, "peek", None)


def _row(ids: list[Any], distances: list[Any] | None, contents: list[Any] | None) -> Iterator[dict[str, Any]]:
    for index, id_ in enumerate(ids):
        yield document(id_, distances[index] if distances else None, contents[index] if contents else None)


def _query_results(response: Any, request: dict[str, Any]) -> list[Batch]:
    """A batch per query for the first ``MAX_DOCUMENTS`` queries, one for all the others (as
    FAISS's): no Python work per query, but counting, for a query of thousands of texts."""
    ids = response.get("ids") or []
    distances = response.get("distances") or repeat(None)  # None where ``include`` left them out
    contents = response.get("documents") or repeat(None)
    rows = zip(ids, distances, contents, strict=False)  # the absent ones repeat None
    batches = [Batch(len(row_i), _row(row_i, row_d, row_c)) for row_i, row_d, row_c in islice(rows, MAX_DOCUMENTS)]
    if len(ids) > MAX_DOCUMENTS:
        batches.append(Batch(sum(map(len, islice(ids, MAX_DOCUMENTS, None))),
                             chain.from_iterable(starmap(_row, rows)), len(ids) - MAX_DOCUMENTS))
    return batches


def _get_results(response: Any, request: dict[str, Any]) -> list[Batch]:
    ids = response.get("ids") or []
    return [Batch(len(ids), _row(ids, None, response.get("documents")))]


def _describe_write(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    return {"collection": getattr(instance, "name", None)}


def _describe_delete(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``delete(ids, where, where_document, limit)``: what selects the documents it deletes besides
    their ids, ``where`` as ``metadata.filter`` (a tenant's delete is told from a global one), and
    the most it deletes (``limit``, in recent chromadb)."""
    fields = _describe_write(instance, args, kwargs)
    metadata = {"filter": argument(args, kwargs, "where", 1),
                "where_document": argument(args, kwargs, "where_document", 2),
                "limit": argument(args, kwargs, "limit", 3)}
    if metadata := {k: v for k, v in metadata.items() if v}:
        fields["metadata"] = metadata
    return fields


def _deleted(response: Any) -> dict[str, Any] | None:
    """How many documents a delete deleted, where chromadb says (``{"deleted": n}``): its
    ``count`` is how many ids it named, and a filter names none."""
    deleted = response.get("deleted") if isinstance(response, dict) else None
    return {"deleted": deleted} if isinstance(deleted, int) else None


def _count(instance: Any, args: Any, kwargs: Any) -> int | None:
    ids = argument(args, kwargs, "ids", 0)
    if isinstance(ids, str):
        return 1
    return len(ids) if isinstance(ids, list | tuple) else None


class ChromaIntegration(Integration):
    name = "chroma"
    distribution = "chromadb"
    module = "chromadb"
    supported = ">=0.5,<2"

    def _instrument(self) -> None:
        from chromadb.api.models.Collection import Collection

        self._wrap_collection("chromadb.api.models.Collection", "Collection", Collection, asynchronous=False)
        try:  # the collections of AsyncHttpClient, where the installed version has them
            from chromadb.api.models.AsyncCollection import AsyncCollection
        except ImportError:
            return
        self._wrap_collection("chromadb.api.models.AsyncCollection", "AsyncCollection", AsyncCollection,
                              asynchronous=True)

    def _wrap_collection(self, module: str, name: str, cls: type, asynchronous: bool) -> None:
        describe_query = _query_describer(positions(cls.query))  # type: ignore[attr-defined]
        wrap = self.patcher.wrap
        wrap(module, f"{name}.query",
             search_wrapper("chroma", "query", describe_query, _query_results, asynchronous))
        wrap(module, f"{name}.get", search_wrapper("chroma", "get", _describe_get, _get_results, asynchronous))
        wrap(module, f"{name}.peek", search_wrapper("chroma", "peek", _describe_peek, _get_results, asynchronous),
             optional=True)
        for operation in ("add", "upsert", "update"):
            wrap(module, f"{name}.{operation}", write_wrapper("chroma", operation, _describe_write, _count,
                                                              asynchronous))
        wrap(module, f"{name}.delete", write_wrapper("chroma", "delete", _describe_delete, _count, asynchronous,
                                                     reported=_deleted))


INTEGRATION = ChromaIntegration()
