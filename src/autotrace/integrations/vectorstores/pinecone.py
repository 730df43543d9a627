"""Pinecone (pinecone data plane, REST): ``Index.query``, ``query_namespaces``, ``search`` (the
records search) and its alias ``search_records``, ``fetch`` and ``fetch_by_metadata``, and their
``AsyncIndex`` twins become retrievals, ``upsert``, ``update`` and ``delete`` spans with counts.

``fetch`` (by ids) and ``fetch_by_metadata`` (a page of the vectors a filter admits) return stored
vectors unranked: retrievals with ``metadata.operation``, the ids asked for (``metadata.ids``) or
the filter and ``limit`` (``top_k``), and the vectors without scores; a ``fetch_by_metadata`` page
records the next page's token as ``metadata.next_page_offset``. ``list`` and ``list_paginated``
are not recorded: they return ids only, no documents to look at.

A records search records its query text (``inputs``), vector or record id, ``top_k``, filter,
namespace and reranking model, given flat or as ``query=`` (a ``SearchQuery`` or mapping), and
its hits (``result.hits``) as documents. The SDK's ``search_records`` calls ``search``: one
retrieval, named after the method called.

A call with ``async_req=True`` (``upsert``, ``query``) runs on the SDK's own thread pool (a
``multiprocessing.pool.ThreadPool``): it runs there in a copy of the caller's context, so it keeps
the caller's tenant and nests under its observation. The SDK puts on each ``Index``, when it is
made, its ``async_req`` wrappers of ``upsert`` and ``query`` over the methods it finds then: while
installed, every index is handed them rebuilt over the traced methods (``_PerIndex``), so an index
made before ``install()`` is recorded too, and one made while installed is not after ``uninstall()``.
"""

from __future__ import annotations

import contextvars
import functools
import types
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any

import wrapt

from ..._internal import guarded_failure
from ..base import Integration
from ..documents import document
from ._common import Batch, Page, requested, search_wrapper, write_wrapper

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


def _as_dict(value: Any) -> dict[str, Any]:
    """A ``SearchQuery``, ``SearchQueryVector`` or mapping as a dict (empty for anything else)."""
    as_dict = getattr(value, "to_dict", None) or getattr(value, "as_dict", None)
    if callable(as_dict):
        value = as_dict()
    return dict(value) if isinstance(value, Mapping) else {}


def _describe_search(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``search(namespace=, top_k=, inputs=, vector=, id=, filter=, rerank=, ...)``, or the query
    given whole as ``query=``."""
    query = _as_dict(kwargs["query"]) if kwargs.get("query") is not None else kwargs
    fields: dict[str, Any] = {"collection": kwargs.get("namespace") or None, "top_k": query.get("top_k"),
                              "filter": query.get("filter")}
    text = _as_dict(query.get("inputs")).get("text")
    if text is not None:
        fields["query"] = text
    elif query.get("id") is not None:
        fields["query"] = f"id:{query['id']}"
    metadata = fields["metadata"] = {}
    vector = query.get("vector")
    if isinstance(vector, Mapping) or hasattr(vector, "to_dict"):  # {"values": [...], "sparse_values": ...}
        vector = _as_dict(vector).get("values")
    if vector is not None:
        metadata["vector_dimensions"] = len(vector)
    if (rerank := _as_dict(kwargs.get("rerank")).get("model")) is not None:
        metadata["rerank"] = rerank
    return fields


def _describe_namespaces(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``query_namespaces``: one retrieval over several namespaces, merged into one ranking. The
    namespaces are read only if they are a collection: an iterator is the client's to consume."""
    given = kwargs.get("namespaces")
    namespaces = list(given) if isinstance(given, Collection) else None
    fields = _describe_query(instance, args, kwargs)
    fields.update(collection=", ".join(map(str, namespaces or ())) or None, top_k=kwargs.get("top_k") or 10)
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


def _submit_in_callers_context(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``_LegacyAsyncPool.submit(func, kwargs)``: ``func`` runs in a copy of the submitter's context."""
    if not args:  # not the SDK's own call: handed over as it is
        return wrapped(*args, **kwargs)
    return wrapped(functools.partial(contextvars.copy_context().run, args[0]), *args[1:], **kwargs)


def _documents(items: Iterable[Any], data: str = "metadata") -> Iterator[dict[str, Any]]:
    """Matches (their ``metadata``) or hits (their ``fields``) as documents."""
    for item in items:
        values = getattr(item, data, None) or {}
        content = next((values[k] for k in _TEXT_KEYS if k in values), None)
        yield document(getattr(item, "id", None), getattr(item, "score", None), content)


def _results(response: Any, request: dict[str, Any]) -> list[Batch]:
    matches = getattr(response, "matches", None) or []
    return [Batch(len(matches), _documents(matches))]


def _search_results(response: Any, request: dict[str, Any]) -> list[Batch]:
    hits = getattr(getattr(response, "result", None), "hits", None) or []
    return [Batch(len(hits), _documents(hits, "fields"))]


def _describe_fetch(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``fetch(ids, namespace)``."""
    return requested({"collection": kwargs.get("namespace") or None}, "fetch",
                     kwargs.get("ids", args[0] if args else None))


def _describe_fetch_by_metadata(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``fetch_by_metadata(filter, namespace, limit, pagination_token)``."""
    return requested({"collection": kwargs.get("namespace") or None, "filter": kwargs.get("filter"),
                      "top_k": kwargs.get("limit")}, "fetch_by_metadata", None)


def _fetched(response: Any) -> Batch:
    """A fetch's vectors (a dict by id, in the store's order) as documents, without scores."""
    vectors = getattr(response, "vectors", None) or {}
    return Batch(len(vectors), _documents(vectors.values()))


def _fetch_results(response: Any, request: dict[str, Any]) -> list[Batch]:
    return [_fetched(response)]


def _page_results(response: Any, request: dict[str, Any]) -> Page:
    return Page([_fetched(response)], getattr(getattr(response, "pagination", None), "next", None))


def _describe_write(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    return {"collection": kwargs.get("namespace") or None}


def _count(instance: Any, args: Any, kwargs: Any) -> int | None:
    items = kwargs.get("vectors", kwargs.get("ids", args[0] if args else None))
    return len(items) if isinstance(items, list | tuple) else None


def _count_update(instance: Any, args: Any, kwargs: Any) -> int | None:
    """One vector by ``id``; by ``filter``, unknown until the store has matched them."""
    return 1 if kwargs.get("id", args[0] if args else None) is not None else None


class _PerIndex:
    """``Index.upsert`` or ``Index.query`` while installed, looked up before an index's own
    attributes (a data descriptor): the SDK's ``async_req`` wrapper on the index, rebuilt over the
    traced method; the SDK itself, making an index, is given the untraced one to wrap. An attribute
    the user set on the index instead is handed back as it is."""

    def __init__(self, name: str, traced: Any, original: Any, build: Callable[..., Any]) -> None:
        self.name, self.traced, self.original, self.build = name, traced, original, build

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self.traced.__get__(None, owner)
        own, pool = instance.__dict__.get(self.name), instance.__dict__.get("_legacy_async_pool")
        if own is None:  # the SDK making the index (its pool set, nothing wrapped yet) wraps the untraced one
            making = pool is not None and f"_canonical_{self.name}" not in instance.__dict__
            return (self.original if making else self.traced).__get__(instance, owner)
        if pool is None or getattr(own, "__qualname__", None) != f"<async_req wrapper>.{self.name}":
            return own
        try:
            return self.build(self.name, self.traced.__get__(instance, owner), pool)
        except Exception as exc:  # the SDK's wrapper changed: the index's own, untraced
            guarded_failure("pinecone", exc)
            return own

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.name] = value

    def __delete__(self, instance: Any) -> None:
        try:
            del instance.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None


#: The unranked reads: method -> (describe, results).
_FETCHES = {"fetch": (_describe_fetch, _fetch_results),
            "fetch_by_metadata": (_describe_fetch_by_metadata, _page_results)}


class PineconeIntegration(Integration):
    name = "pinecone"
    distribution = "pinecone"
    module = "pinecone"
    supported = ">=5,<12"

    def __init__(self) -> None:
        super().__init__()
        self._per_index: list[tuple[type, str, _PerIndex]] = []

    def _instrument(self) -> None:
        module = "pinecone.index"
        self.patcher.wrap(module, "Index.query", search_wrapper("pinecone", "query", _describe_query, _results))
        self.patcher.wrap(module, "Index.query_namespaces", _namespaces_wrapper(), optional=True)
        for operation in ("search", "search_records"):
            self.patcher.wrap(module, f"Index.{operation}",
                              search_wrapper("pinecone", operation, _describe_search, _search_results), optional=True)
        for operation, (describe, results) in _FETCHES.items():
            self.patcher.wrap(module, f"Index.{operation}", search_wrapper("pinecone", operation, describe, results),
                              optional=True)
        self.patcher.wrap(module, "Index.upsert", write_wrapper("pinecone", "upsert", _describe_write, _count))
        self.patcher.wrap(module, "Index.update", write_wrapper("pinecone", "update", _describe_write, _count_update),
                          optional=True)
        self.patcher.wrap(module, "Index.delete", write_wrapper("pinecone", "delete", _describe_write, _count))
        self.patcher.wrap("pinecone._legacy.async_req", "_LegacyAsyncPool.submit", _submit_in_callers_context,
                          optional=True)
        self._rebind_per_index()
        module = "pinecone.async_client.async_index"  # the asyncio client, where the installed version has it
        self.patcher.wrap(module, "AsyncIndex.query", search_wrapper("pinecone", "query", _describe_query, _results,
                                                                     asynchronous=True), optional=True)
        self.patcher.wrap(module, "AsyncIndex.query_namespaces",  # its queries are tasks: they keep the context
                          search_wrapper("pinecone", "query_namespaces", _describe_namespaces, _results,
                                         asynchronous=True), optional=True)
        for operation in ("search", "search_records"):
            self.patcher.wrap(module, f"AsyncIndex.{operation}",
                              search_wrapper("pinecone", operation, _describe_search, _search_results,
                                             asynchronous=True), optional=True)
        for operation, (describe, results) in _FETCHES.items():
            self.patcher.wrap(module, f"AsyncIndex.{operation}",
                              search_wrapper("pinecone", operation, describe, results, asynchronous=True),
                              optional=True)
        for operation, counter in (("upsert", _count), ("update", _count_update), ("delete", _count)):
            self.patcher.wrap(module, f"AsyncIndex.{operation}",
                              write_wrapper("pinecone", operation, _describe_write, counter, asynchronous=True),
                              optional=True)

    def _rebind_per_index(self) -> None:
        """``_PerIndex`` over the traced ``upsert`` and ``query``, where the SDK wraps them per index."""
        try:
            from pinecone._legacy.async_req import _METHODS_TO_WRAP, _build_wrapper
            from pinecone.index import Index
        except ImportError:  # a version without per-index wrappers: the class's methods are the index's
            return
        for name in ("upsert", "query"):
            traced = Index.__dict__.get(name)
            if name in _METHODS_TO_WRAP and isinstance(traced, wrapt.FunctionWrapper):  # ours: patched above
                per_index = _PerIndex(name, traced, traced.__wrapped__, _build_wrapper)
                setattr(Index, name, per_index)
                self._per_index.append((Index, name, per_index))

    def _uninstrument(self) -> None:
        """The traced methods back in place of ``_PerIndex``, for the patcher to restore the originals."""
        while self._per_index:
            cls, name, per_index = self._per_index.pop()
            if cls.__dict__.get(name) is per_index:
                setattr(cls, name, per_index.traced)


INTEGRATION = PineconeIntegration()
