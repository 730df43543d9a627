"""Chroma (chromadb): ``Collection.query`` and ``get`` become retrievals, ``add``/``upsert``/
``delete`` spans with counts."""

from __future__ import annotations

from typing import Any

from ..base import Integration
from ._common import argument, document, search_wrapper, write_wrapper


def _describe_query(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    texts = kwargs.get("query_texts")
    embeddings = kwargs.get("query_embeddings", argument(args, kwargs, "query_embeddings", 0))
    fields: dict[str, Any] = {"collection": getattr(instance, "name", None), "top_k": kwargs.get("n_results", 10),
                              "filter": kwargs.get("where")}
    if texts:
        fields["query"] = texts[0] if len(texts) == 1 else texts
    elif embeddings is not None and len(embeddings):
        fields["metadata"] = {"queries": len(embeddings), "vector_dimensions": len(embeddings[0])}
    return fields


def _describe_get(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    return {"collection": getattr(instance, "name", None), "top_k": kwargs.get("limit"),
            "filter": kwargs.get("where")}


def _query_results(response: Any, request: dict[str, Any]) -> list[list[dict[str, Any]]]:
    ids = response.get("ids") or []
    distances = response.get("distances") or [[None] * len(row) for row in ids]
    contents = response.get("documents") or [[None] * len(row) for row in ids]
    return [[document(i, d, c) for i, d, c in zip(row_i, row_d or [None] * len(row_i), row_c or [None] * len(row_i),
                                                    strict=True)]
            for row_i, row_d, row_c in zip(ids, distances, contents, strict=True)]


def _get_results(response: Any, request: dict[str, Any]) -> list[list[dict[str, Any]]]:
    ids = response.get("ids") or []
    contents = response.get("documents") or [None] * len(ids)
    return [[document(i, None, c) for i, c in zip(ids, contents, strict=True)]]


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
        module = "chromadb.api.models.Collection"
        wrap = self.patcher.wrap
        wrap(module, "Collection.query", search_wrapper("chroma", "query", _describe_query, _query_results))
        wrap(module, "Collection.get", search_wrapper("chroma", "get", _describe_get, _get_results))
        for operation in ("add", "upsert", "delete"):
            wrap(module, f"Collection.{operation}", write_wrapper("chroma", operation, _describe_write, _count))


INTEGRATION = ChromaIntegration()
