"""Chroma (chromadb): ``Collection.query`` and ``get`` become retrievals, ``add``/``upsert``/
``delete`` spans with counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..base import Integration
from ._common import Batch, Describe, argument, document, positions, search_wrapper, write_wrapper


def _query_describer(at: dict[str, int]) -> Describe:
    """What ``query(query_embeddings, query_texts, ..., n_results, where, ...)`` asks, its arguments
    found by position where ``at`` says (``ids``, added in chromadb 1.0, moved ``n_results`` and
    ``where``)."""
    def describe(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
        texts = argument(args, kwargs, "query_texts", 1)
        embeddings = argument(args, kwargs, "query_embeddings", 0)
        fields: dict[str, Any] = {"collection": getattr(instance, "name", None),
                                  "top_k": argument(args, kwargs, "n_results", at.get("n_results"), 10),
                                  "filter": argument(args, kwargs, "where", at.get("where"))}
        if texts:
            fields["query"] = texts[0] if len(texts) == 1 else texts
        elif embeddings is not None and len(embeddings):
            if hasattr(embeddings[0], "__len__"):
                fields["metadata"] = {"queries": len(embeddings), "vector_dimensions": len(embeddings[0])}
            else:  # one flat vector (a list or a 1-D array), which chroma takes as one query
                fields["metadata"] = {"queries": 1, "vector_dimensions": len(embeddings)}
        return fields

    return describe


def _describe_get(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``get(ids, where, limit, ...)``."""
    return {"collection": getattr(instance, "name", None), "top_k": argument(args, kwargs, "limit", 2),
            "filter": argument(args, kwargs, "where", 1)}


def _row(ids: list[Any], distances: list[Any] | None, contents: list[Any] | None) -> Iterator[dict[str, Any]]:
    for index, id_ in enumerate(ids):
        yield document(id_, distances[index] if distances else None, contents[index] if contents else None)


def _query_results(response: Any, request: dict[str, Any]) -> list[Batch]:
    ids = response.get("ids") or []
    distances = response.get("distances") or [None] * len(ids)  # None where ``include`` left them out
    contents = response.get("documents") or [None] * len(ids)
    return [Batch(len(row_i), _row(row_i, row_d, row_c))
            for row_i, row_d, row_c in zip(ids, distances, contents, strict=True)]


def _get_results(response: Any, request: dict[str, Any]) -> list[Batch]:
    ids = response.get("ids") or []
    return [Batch(len(ids), _row(ids, None, response.get("documents")))]


def _describe_write(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    return {"collection": getattr(instance, "name", None)}


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

        module = "chromadb.api.models.Collection"
        wrap = self.patcher.wrap
        describe_query = _query_describer(positions(Collection.query))
        wrap(module, "Collection.query", search_wrapper("chroma", "query", describe_query, _query_results))
        wrap(module, "Collection.get", search_wrapper("chroma", "get", _describe_get, _get_results))
        for operation in ("add", "upsert", "delete"):
            wrap(module, f"Collection.{operation}", write_wrapper("chroma", operation, _describe_write, _count))


INTEGRATION = ChromaIntegration()
