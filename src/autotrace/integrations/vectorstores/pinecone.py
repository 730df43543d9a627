"""Pinecone (pinecone data plane): ``Index.query``, ``query_namespaces``, ``search`` (the
records search) and its alias ``search_records``, ``fetch`` and ``fetch_by_metadata``, and their
``AsyncIndex`` (asyncio) and ``GrpcIndex`` (gRPC) twins become retrievals, ``upsert``,
``upsert_records``, ``update`` and ``delete`` spans with counts (a write by ``filter`` records it
as ``metadata.filter``, a ``delete_all`` or ``dry_run`` as given). A batched ``upsert``
(``batch_size=``) returns the batches the server refused instead of raising: its span is then
failed (level ERROR), its message saying how many batches and items failed and the first error.

The Documents API of schema-based indexes (``index.documents``, sync and asyncio): ``search`` and
``fetch`` become retrievals (``pinecone.documents.search``: the query text of its ``score_by``
clauses, their types as ``metadata.score_by``, a dense vector's dimensions; ``fetch`` by ids or a
page by filter, unranked), ``upsert``, ``batch_upsert`` (failed as a batched ``upsert`` is),
``update`` and ``delete`` spans with counts.

The gRPC client's transport is compiled into the SDK (not ``grpcio``): its calls have no gRPC
client span to nest under the retrieval, and carry no trace context to the server. Its
``*_async`` methods submit the traced method to the index's executor and return a future: the
method runs there in a copy of the caller's context (``_InCallersContext``), so its retrieval or
span keeps the caller's tenant and nests under the observation current at the submit.

``fetch`` (by ids) and ``fetch_by_metadata`` (a page of the vectors a filter admits) return stored
vectors unranked: retrievals with ``metadata.operation``, the ids asked for (``metadata.ids``) or
the filter and ``limit`` (``top_k``), and the vectors without scores; a ``fetch_by_metadata`` page
records the next page's token as ``metadata.next_page_offset``. ``list`` and ``list_paginated``
are not recorded: they return ids only, no documents to look at.

A ``query`` (or ``query_namespaces``) with a ``sparse_vector`` records its size (its non-zero
entries) as ``metadata.sparse_size``; without a dense vector, it is ``metadata.query_type``
``sparse`` (its scores the sparse dot products).

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
from ..._serialize import as_text
from ..base import Integration
from ..documents import CONTENT_CHARS, document
from ._common import Batch, Page, requested, search_wrapper, write_wrapper

_TEXT_KEYS = ("text", "content", "page_content", "document")


def _describe_query(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``query(top_k=, vector=, id=, sparse_vector=, ...)``: a dense vector's dimensions, a sparse
    one's size (its non-zero entries, ``metadata.sparse_size``; alone, ``query_type`` ``sparse``:
    its scores are the sparse dot products), or the stored vector's id."""
    vector, sparse = kwargs.get("vector"), kwargs.get("sparse_vector")
    fields: dict[str, Any] = {"collection": kwargs.get("namespace") or None, "top_k": kwargs.get("top_k"),
                              "filter": kwargs.get("filter")}
    metadata: dict[str, Any] = {}
    if vector is not None:
        metadata["vector_dimensions"] = len(vector)
    elif kwargs.get("id") is not None:
        fields["query"] = f"id:{kwargs['id']}"
    if sparse is not None:
        indices = sparse.get("indices") if isinstance(sparse, Mapping) else getattr(sparse, "indices", None)
        if hasattr(indices, "__len__"):
            metadata["sparse_size"] = len(indices)
        if vector is None:
            metadata["query_type"] = "sparse"
    if metadata:
        fields["metadata"] = metadata
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
    """The index as a method that hands work to a thread pool sees it: ``query_namespaces``'
    per-namespace ``query`` calls, and whatever the gRPC client's ``*_async`` methods submit to its
    executor, run in a copy of the caller's context, so they keep its tenant and nest under its
    observation instead of starting tenantless traces of their own."""

    def __init__(self, index: Any, context: contextvars.Context) -> None:
        super().__init__(index)
        self._self_context = context

    def query(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_context.copy().run(self.__wrapped__.query, *args, **kwargs)

    @property
    def _executor(self) -> Any:
        executor = self.__wrapped__._executor
        try:
            return _SubmitsInContext(executor, self._self_context)
        except Exception as exc:  # the index's own executor: its work outside the caller's context
            guarded_failure("pinecone", exc)
            return executor


class _SubmitsInContext(wrapt.ObjectProxy):  # type: ignore[misc]
    """An executor whose ``submit`` runs the function in a copy of ``context``."""

    def __init__(self, executor: Any, context: contextvars.Context) -> None:
        super().__init__(executor)
        self._self_context = context

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__.submit(self._self_context.copy().run, fn, *args, **kwargs)


def _in_callers_context(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """The method run on the index as ``_InCallersContext`` (a bound method another wrapper
    replaced is called as it is)."""
    if type(wrapped) is not types.MethodType or instance is None:
        return wrapped(*args, **kwargs)
    try:
        index = _InCallersContext(instance, contextvars.copy_context())
    except Exception as exc:  # the call as it is: its pool work outside the caller's context
        guarded_failure("pinecone", exc)
        return wrapped(*args, **kwargs)
    return wrapped.__func__(index, *args, **kwargs)


def _namespaces_wrapper() -> Callable[..., Any]:
    """``query_namespaces`` as one retrieval whose thread-pool queries stay in its context."""
    search = search_wrapper("pinecone", "query_namespaces", _describe_namespaces, _results)

    def traced(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        def in_callers_context(*call_args: Any, **call_kwargs: Any) -> Any:
            return _in_callers_context(wrapped, instance, call_args, call_kwargs)

        return search(in_callers_context, instance, args, kwargs)

    return traced


def _submit_in_callers_context(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``_LegacyAsyncPool.submit(func, kwargs)``: ``func`` runs in a copy of the submitter's context."""
    if not args:  # not the SDK's own call: handed over as it is
        return wrapped(*args, **kwargs)
    return wrapped(functools.partial(contextvars.copy_context().run, args[0]), *args[1:], **kwargs)


def _documents(items: Iterable[Any], data: str | None = "metadata") -> Iterator[dict[str, Any]]:
    """Matches (their ``metadata``), hits (their ``fields``) or, with ``data`` None, the Documents
    API's documents (their own fields, read with ``get``) as documents."""
    for item in items:
        if data is None:
            content = next((value for value in map(item.get, _TEXT_KEYS) if value is not None), None)
        else:
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


def _clause(clause: Any) -> tuple[Any, Any, Any]:
    """A Documents search clause (a typed ``TextQuery``... or a mapping): its type, query text, vector."""
    if isinstance(clause, Mapping):
        return clause.get("type"), clause.get("query"), clause.get("values")
    kind = getattr(getattr(type(clause), "__struct_config__", None), "tag", None)  # msgspec's tag: "text", ...
    return kind, getattr(clause, "query", None), getattr(clause, "values", None)


def _describe_documents_search(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``documents.search(namespace=, score_by=[...], top_k=, filter=, ...)``: the query text of its
    first ``_CLAUSES`` clauses (text, query string, embed), a dense vector's dimensions, and each
    clause's type (``metadata.score_by``)."""
    fields: dict[str, Any] = {"collection": kwargs.get("namespace") or None, "top_k": kwargs.get("top_k"),
                              "filter": kwargs.get("filter")}
    clauses = kwargs.get("score_by")
    metadata: dict[str, Any] = {}
    texts, kinds = [], []
    for kind, query, values in map(_clause, clauses[:_CLAUSES] if isinstance(clauses, list | tuple) else ()):
        kinds.append(kind)
        if isinstance(query, str):
            texts.append(query)
        if values is not None and hasattr(values, "__len__"):
            metadata["vector_dimensions"] = len(values)
    if texts:
        fields["query"] = texts[0] if len(texts) == 1 else texts
    if kinds:
        metadata["score_by"] = kinds
    fields["metadata"] = metadata
    return fields


def _documents_results(response: Any, request: dict[str, Any]) -> list[Batch]:
    matches = getattr(response, "matches", None) or []
    return [Batch(len(matches), _documents(matches, None))]


def _describe_documents_fetch(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``documents.fetch(namespace=, ids=, filter=, limit=, pagination_token=, ...)``."""
    return requested({"collection": kwargs.get("namespace") or None, "filter": kwargs.get("filter"),
                      "top_k": kwargs.get("limit")}, "fetch", kwargs.get("ids"))


def _documents_page(response: Any, request: dict[str, Any]) -> Page:
    """A fetch's documents (a dict by id, without scores), and by filter where the next page starts."""
    documents = getattr(response, "documents", None) or {}
    return Page([Batch(len(documents), _documents(documents.values(), None))],
                getattr(getattr(response, "pagination", None), "next", None))


def _count_documents(instance: Any, args: Any, kwargs: Any) -> int | None:
    items = kwargs.get("documents", kwargs.get("ids"))
    return len(items) if isinstance(items, list | tuple) else None


#: What a write may select its vectors by, or say of itself, other than their ids.
_SELECTORS = ("filter", "delete_all", "dry_run")


def _describe_write(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """The namespace written; for a write that selects by ``filter`` (its count unknown), the filter,
    and a ``delete_all`` or ``dry_run`` (nothing changed) as given, so that each can be told from
    a delete or update of the vectors it names."""
    fields: dict[str, Any] = {"collection": kwargs.get("namespace") or None}
    if "filter" in kwargs or "delete_all" in kwargs or "dry_run" in kwargs:  # an upsert names none
        fields["metadata"] = {k: kwargs[k] for k in _SELECTORS if kwargs.get(k)}
    return fields


def _count(instance: Any, args: Any, kwargs: Any) -> int | None:
    items = kwargs.get("vectors", kwargs.get("records", kwargs.get("ids", args[0] if args else None)))
    return len(items) if isinstance(items, list | tuple) else None


def _failed_batches(response: Any) -> str | None:
    """A batched ``upsert`` (``batch_size=``) returns, not raises, its failed batches
    (``UpsertResponse.errors``: one per failed piece of a batch): how many failed, of their items
    how many, and the first error."""
    errors = getattr(response, "errors", None)
    if not errors or not isinstance(errors, list):
        return None
    first = as_text(getattr(errors[0], "error_message", None) or getattr(errors[0], "error", ""))[:CONTENT_CHARS]
    failed = getattr(response, "failed_batch_count", None)  # a batch split (too large) may fail in several pieces
    return (f"{failed if isinstance(failed, int) and failed else len(errors)} of "
            f"{getattr(response, 'total_batch_count', '?')} batches failed "
            f"({getattr(response, 'failed_item_count', '?')} of {getattr(response, 'total_item_count', '?')} items): "
            f"{first}")


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
#: The writes: method -> count.
_WRITES = {"upsert": _count, "upsert_records": _count, "update": _count_update, "delete": _count}
#: The data-plane clients: module, class, whether its methods are coroutines.
_CLASSES = (("pinecone.index", "Index", False), ("pinecone.grpc", "GrpcIndex", False),
            ("pinecone.async_client.async_index", "AsyncIndex", True))
#: The Documents API of schema-based indexes (``index.documents``): module, class, whether its
#: methods are coroutines.
_DOCUMENTS = (("pinecone.client.documents", "Documents", False),
              ("pinecone.async_client.documents", "AsyncDocuments", True))
#: Score-by clauses described per Documents search.
_CLAUSES = 20
#: The gRPC client's calls that run a traced method on its thread pool and return a future.
_GRPC_FUTURES = ("query_async", "query_namespaces_async", "fetch_async", "upsert_async", "update_async",
                 "delete_async")


class PineconeIntegration(Integration):
    name = "pinecone"
    distribution = "pinecone"
    module = "pinecone"
    supported = ">=9,<12"  # 9.0 rebuilt the SDK (``pinecone.index``): 5-8 have none of the patched classes

    def __init__(self) -> None:
        super().__init__()
        self._per_index: list[tuple[type, str, _PerIndex]] = []

    def _instrument(self) -> None:
        for module, cls, asynchronous in _CLASSES:
            self._wrap_data_plane(module, cls, asynchronous)
        self.patcher.wrap("pinecone._legacy.async_req", "_LegacyAsyncPool.submit", _submit_in_callers_context,
                          optional=True)
        for module, cls, asynchronous in _DOCUMENTS:
            self._wrap_documents(module, cls, asynchronous)
        self._rebind_per_index()
        for name in _GRPC_FUTURES:
            self.patcher.wrap("pinecone.grpc", f"GrpcIndex.{name}", _in_callers_context, optional=True)

    def _wrap_data_plane(self, module: str, cls: str, asynchronous: bool) -> None:
        """The reads of ``cls`` as retrievals, its writes as spans (all optional but the REST
        ``Index``'s query, upsert and delete, there in every supported version)."""
        optional = cls != "Index"

        def wrap(operation: str, wrapper: Callable[..., Any], required: bool = False) -> None:
            self.patcher.wrap(module, f"{cls}.{operation}", wrapper, optional=optional or not required)

        def search(operation: str, describe: Any, results: Any) -> Callable[..., Any]:
            return search_wrapper("pinecone", operation, describe, results, asynchronous=asynchronous)

        wrap("query", search("query", _describe_query, _results), required=True)
        # the asyncio client's per-namespace queries are tasks: they keep the context
        wrap("query_namespaces", search("query_namespaces", _describe_namespaces, _results) if asynchronous
             else _namespaces_wrapper())
        for operation in ("search", "search_records"):
            wrap(operation, search(operation, _describe_search, _search_results))
        for operation, (describe, results) in _FETCHES.items():
            wrap(operation, search(operation, describe, results))
        for operation, counter in _WRITES.items():
            failed = _failed_batches if operation == "upsert" else None
            wrap(operation, write_wrapper("pinecone", operation, _describe_write, counter, asynchronous, failed),
                 required=operation in ("upsert", "delete"))

    def _wrap_documents(self, module: str, cls: str, asynchronous: bool) -> None:
        """The Documents API's ``search`` and ``fetch`` as retrievals named ``pinecone.documents.*``,
        its writes as spans (a ``batch_upsert``'s failed batches, returned, mark it failed)."""
        def wrap(operation: str, wrapper: Callable[..., Any]) -> None:
            self.patcher.wrap(module, f"{cls}.{operation}", wrapper, optional=True)

        wrap("search", search_wrapper("pinecone", "documents.search", _describe_documents_search, _documents_results,
                                      asynchronous))
        wrap("fetch", search_wrapper("pinecone", "documents.fetch", _describe_documents_fetch, _documents_page,
                                     asynchronous))
        for operation in ("upsert", "batch_upsert", "update", "delete"):
            wrap(operation, write_wrapper("pinecone", f"documents.{operation}", _describe_write, _count_documents,
                                          asynchronous, _failed_batches if operation == "batch_upsert" else None))

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
