"""Qdrant (qdrant-client, sync and async): ``query_points`` and ``query_batch_points`` become
retrievals, ``search``/``search_batch`` too where the installed client still has them;
``upsert``/``delete`` become spans with counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..base import Integration
from ._common import Batch, argument, document, search_wrapper, write_wrapper

_TEXT_KEYS = ("text", "content", "page_content", "document")


def _query_fields(query: Any) -> dict[str, Any]:
    if isinstance(query, str):
        return {"query": query}
    text = getattr(query, "text", None)
    if isinstance(text, str):
        return {"query": text}
    nearest = getattr(query, "nearest", None)  # models.NearestQuery wraps the vector
    if nearest is not None:
        return _query_fields(nearest)
    shape = getattr(query, "shape", None)  # a numpy vector
    if isinstance(shape, tuple) and len(shape) == 1:
        return {"metadata": {"vector_dimensions": int(shape[0])}}
    if isinstance(query, list | tuple) and query and isinstance(query[0], int | float):
        return {"metadata": {"vector_dimensions": len(query)}}
    return {}


def _filter(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(exclude_none=True) if callable(dump) else value


def _describe_query(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``query_points(collection_name, query, using, prefetch, query_filter, search_params, limit, ...)``."""
    fields = {"collection": argument(args, kwargs, "collection_name", 0),
              "top_k": argument(args, kwargs, "limit", 6, 10),
              "filter": _filter(argument(args, kwargs, "query_filter", 4))}
    fields.update(_query_fields(argument(args, kwargs, "query", 1)))
    return fields


def _describe_search(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """The older ``search(collection_name, query_vector, ...)``: limit and filter by keyword."""
    fields = {"collection": argument(args, kwargs, "collection_name", 0), "top_k": kwargs.get("limit", 10),
              "filter": _filter(kwargs.get("query_filter"))}
    fields.update(_query_fields(argument(args, kwargs, "query_vector", 1)))
    return fields


def _describe_batch(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    requests = argument(args, kwargs, "requests", 1) or []
    return {"collection": argument(args, kwargs, "collection_name", 0), "metadata": {"queries": len(requests)}}


def _documents(points: list[Any]) -> Iterator[dict[str, Any]]:
    for point in points:
        payload = getattr(point, "payload", None) or {}
        content = next((payload[k] for k in _TEXT_KEYS if k in payload), None)
        yield document(getattr(point, "id", None), getattr(point, "score", None), content)


def _points(response: Any) -> Batch:
    points = getattr(response, "points", response) or []  # query_points -> QueryResponse, search -> list
    return Batch(len(points), _documents(points))


def _query_results(response: Any, request: dict[str, Any]) -> list[Batch]:
    return [_points(response)]


def _batch_results(responses: Any, request: dict[str, Any]) -> list[Batch]:
    return [_points(r) for r in responses or ()]


def _describe_write(instance: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    return {"collection": argument(args, kwargs, "collection_name", 0)}


def _count_points(instance: Any, args: Any, kwargs: Any) -> int | None:
    points = argument(args, kwargs, "points", 1)
    if points is None:
        points = argument(args, kwargs, "points_selector", 1)
    ids = getattr(points, "ids", None)
    if isinstance(ids, list):
        return len(ids)
    points_list = getattr(points, "points", points)
    return len(points_list) if isinstance(points_list, list | tuple) else None


class QdrantIntegration(Integration):
    name = "qdrant"
    distribution = "qdrant-client"
    module = "qdrant_client"
    supported = ">=1.9,<2"

    def _instrument(self) -> None:
        for cls, asynchronous in (("QdrantClient", False), ("AsyncQdrantClient", True)):
            module = "qdrant_client"
            wrap = self.patcher.wrap
            wrap(module, f"{cls}.query_points",
                 search_wrapper("qdrant", "query_points", _describe_query, _query_results, asynchronous))
            wrap(module, f"{cls}.query_batch_points",
                 search_wrapper("qdrant", "query_batch_points", _describe_batch, _batch_results, asynchronous))
            wrap(module, f"{cls}.search",
                 search_wrapper("qdrant", "search", _describe_search, _query_results, asynchronous), optional=True)
            wrap(module, f"{cls}.search_batch",
                 search_wrapper("qdrant", "search_batch", _describe_batch, _batch_results, asynchronous),
                 optional=True)
            wrap(module, f"{cls}.upsert", write_wrapper("qdrant", "upsert", _describe_write, _count_points,
                                                        asynchronous))
            wrap(module, f"{cls}.delete", write_wrapper("qdrant", "delete", _describe_write, _count_points,
                                                        asynchronous))


INTEGRATION = QdrantIntegration()
