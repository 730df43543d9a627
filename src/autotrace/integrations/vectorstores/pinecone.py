"""Pinecone (pinecone data plane, REST): ``Index.query``, ``query_namespaces`` and their
``AsyncIndex`` twins become retrievals, ``upsert`` and ``delete`` spans with counts."""

from __future__ import annotations

import contextvars
import types
from collections.abc import Callable, Iterator
from typing import Any

import wrapt

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


def _describe_namespaces(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``query_namespaces``: one retrieval over several namespaces, merged into one ranking."""
    namespaces = list(kwargs.get("namespaces") or ())
    fields = _describe_query(instance, args, kwargs)
    fields.update(collection=", ".join(map(str, namespaces)) or None, top_k=kwargs.get("top_k") or 10)
    fields.setdefault("metadata", {}).update(namespaces=namespaces, metric=kwargs.get("metric"))
    return fields


class _InCallersContext(wrapt.ObjectProxy):  # type: ignore[misc]
    """The index as ``query_namespaces`` sees it: the per-namespace ``query`` calls it runs on a
    thread pool run in a copy of the caller's context, so they keep its tenant and nest under its
    retrieval instead of starting tenantless traces of their own."""

    def __init__(self, index: Any, context: contextvars.Context) -> None:
        super().__init__(index)
        self._self_context = context

    def query(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_context.copy().run(self.__wrapped__.query, *args, **kwargs)


def _namespaces_wrapper() -> Callable[..., Any]:
    """``Index.query_namespaces`` as one retrieval whose thread-pool queries stay in its context."""
    search = search_wrapper("pinecone", "query_namespaces", _describe_namespaces, _results)

    def traced(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        def in_callers_context(*call_args: Any, **call_kwargs: Any) -> Any:
            if type(wrapped) is not types.MethodType:  # not the plain bound method: call it as it is
                return wrapped(*call_args, **call_kwargs)
            index = _InCallersContext(instance, contextvars.copy_context())
            return wrapped.__func__(index, *call_args, **call_kwargs)

        return search(in_callers_context, instance, args, kwargs)

    return traced


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
        self.patcher.wrap(module, "Index.query_namespaces", _namespaces_wrapper(), optional=True)
        self.patcher.wrap(module, "Index.upsert", write_wrapper("pinecone", "upsert", _describe_write, _count))
        self.patcher.wrap(module, "Index.delete", write_wrapper("pinecone", "delete", _describe_write, _count))
        module = "pinecone.async_client.async_index"  # the asyncio client, where the installed version has it
        self.patcher.wrap(module, "AsyncIndex.query", search_wrapper("pinecone", "query", _describe_query, _results,
                                                                     asynchronous=True), optional=True)
        self.patcher.wrap(module, "AsyncIndex.query_namespaces",  # its queries are tasks: they keep the context
                          search_wrapper("pinecone", "query_namespaces", _describe_namespaces, _results,
                                         asynchronous=True), optional=True)
        for operation in ("upsert", "delete"):
            self.patcher.wrap(module, f"AsyncIndex.{operation}",
                              write_wrapper("pinecone", operation, _describe_write, _count, asynchronous=True),
                              optional=True)


INTEGRATION = PineconeIntegration()
