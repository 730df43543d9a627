"""Pinecone (pinecone data plane, REST): ``Index.query`` and ``AsyncIndex.query`` become
retrievals, ``upsert`` and ``delete`` spans with counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..base import Integration
from ._common import Batch, document, search_wrapper, write_wrapper

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


def _documents(matches: list[Any]) -> Iterator[dict[str, Any]]:
    for match in matches:
        metadata = getattr(match, "metadata", None) or {}
        content = next((metadata[k] for k in _TEXT_KEYS if k in metadata), None)
        yield document(match.id, getattr(match, "score", None), content)


def _results(response: Any, request: dict[str, Any]) -> list[Batch]:
    matches = getattr(response, "matches", None) or []
    return [Batch(len(matches), _documents(matches))]


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
        module = "pinecone.async_client.async_index"  # the asyncio client, where the installed version has it
        self.patcher.wrap(module, "AsyncIndex.query", search_wrapper("pinecone", "query", _describe_query, _results,
                                                                     asynchronous=True), optional=True)
        for operation in ("upsert", "delete"):
            self.patcher.wrap(module, f"AsyncIndex.{operation}",
                              write_wrapper("pinecone", operation, _describe_write, _count, asynchronous=True),
                              optional=True)


INTEGRATION = PineconeIntegration()
