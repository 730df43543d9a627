"""Pinecone (pinecone data plane, REST): ``Index.query`` becomes a retrieval, ``upsert`` and
``delete`` spans with counts."""

from __future__ import annotations

from typing import Any

from ..base import Integration
from ._common import document, search_wrapper, write_wrapper

_TEXT_KEYS = ("text", "content", "page_content", "document")


def _describe_query(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    vector = kwargs.get("vector")
    fields: dict[str, Any] = {"collection": kwargs.get("namespace") or None, "top_k": kwargs.get("top_k"),
                              "filter": kwargs.get("filter")}
    if vector is not None:
        fields["metadata"] = {"vector_dimensions": len(vector)}
    elif kwargs.get("id") is not None:
        fields["query"] = f"id:{kwargs['id']}"
    return fields


def _results(response: Any, request: dict[str, Any]) -> list[list[dict[str, Any]]]:
    found = []
    for match in getattr(response, "matches", None) or ():
        metadata = getattr(match, "metadata", None) or {}
        content = next((metadata[k] for k in _TEXT_KEYS if k in metadata), None)
        found.append(document(match.id, getattr(match, "score", None), content))
    return [found]


def _describe_write(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    return {"collection": kwargs.get("namespace") or None}


def _count(instance: Any, args: Any, kwargs: Any) -> int | None:
    items = kwargs.get("vectors", kwargs.get("ids", args[0] if args else None))
    return len(items) if isinstance(items, list | tuple) else None


class PineconeIntegration(Integration):
    name = "pinecone"
    distribution = "pinecone"
    module = "pinecone"
    supported = ">=5,<12"

    def _instrument(self) -> None:
        module = "pinecone.index"
        self.patcher.wrap(module, "Index.query", search_wrapper("pinecone", "query", _describe_query, _results))
        self.patcher.wrap(module, "Index.upsert", write_wrapper("pinecone", "upsert", _describe_write, _count))
        self.patcher.wrap(module, "Index.delete", write_wrapper("pinecone", "delete", _describe_write, _count))


INTEGRATION = PineconeIntegration()
