"""LangChain vector stores searched directly (``store.similarity_search(query)``, not through a
retriever). LangChain sends no callback for these calls, so only the store client's patch saw them,
with the query as a vector and the documents without their metadata.

The search methods of ``VectorStore`` and of each subclass that defines its own are wrapped: a
call is a ``retriever`` observation named ``<Class>.<method>`` with the query text, ``top_k``
(``k``; for MMR the ``fetch_k`` candidates are the store's, recorded by its client under it), the
filter and the documents found (with their scores for the ``*_with_score`` and
``*_with_relevance_scores`` methods). The store client's own search inside only enriches it
(``ownership``). Inside a LangChain retriever, which has its observation from the callbacks, or
inside another wrapped search (``similarity_search`` calling ``similarity_search_with_score``),
nothing more is recorded: the first search gives that observation its ``top_k`` and filter (a
``VectorStoreRetriever``'s ``search_kwargs``), which the callbacks do not tell. Classes defined
after ``install()`` are wrapped as they are defined.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from .. import recorder
from ..observation import Observation, ObservationType
from . import ownership
from .base import Patcher
from .class_family import ClassFamilyPatches, FamilyCall
from .langchain_convert import retrieval_fields

#: The search methods that take the query as text, sync and async.
SEARCHES = ("similarity_search", "similarity_search_with_score", "similarity_search_with_relevance_scores",
            "max_marginal_relevance_search")
_ASYNC_SEARCHES = tuple(f"a{name}" for name in SEARCHES)


class _Call(FamilyCall):
    """One direct search: its observation is current while the store runs it."""

    __slots__ = ()
    failure = "langchain.vectorstore"

    def start(self, instance: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Observation | None:
        found = ownership.owner(ObservationType.RETRIEVER)
        k = args[1] if len(args) > 1 else kwargs.get("k")
        top_k = k if isinstance(k, int) and not isinstance(k, bool) else None
        if found is not None:  # a retriever, or an outer search, records it: with the ``k`` and filter
            if isinstance(found, Observation) and "top_k" not in found.fields:  # ``as_retriever``'s ``search_kwargs``
                if "marginal" in method:  # MMR's ``k`` is what it keeps; ``fetch_k``, what the store is asked
                    fetch_k = args[2] if len(args) > 2 else kwargs.get("fetch_k", _fetch_k_default(type(instance), method))
                    top_k = fetch_k if isinstance(fetch_k, int) and not isinstance(fetch_k, bool) else None
                found.update(top_k=top_k, filter=kwargs.get("filter"))
            return None
        query = args[0] if args else kwargs.get("query")
        store = type(instance).__name__
        return recorder.start_with(ObservationType.RETRIEVER, f"{store}.{method.removeprefix('a')}", self.failure,
                                   store=store, query=query if isinstance(query, str) else None,
                                   top_k=top_k, filter=kwargs.get("filter"), metadata={"operation": method})

    def result_fields(self, result: Any) -> dict[str, Any]:
        return retrieval_fields(list(result) if isinstance(result, list | tuple) else [])


@functools.lru_cache(maxsize=64)
def _fetch_k_default(store: type, method: str) -> Any:
    """The ``fetch_k`` an MMR search of ``store`` asks when its caller gives none (LangChain's 20)."""
    try:
        return inspect.signature(getattr(store, method)).parameters["fetch_k"].default
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def store_patches(patcher: Patcher) -> ClassFamilyPatches:
    """The search methods of ``VectorStore`` and its subclasses, wrapped from when the application
    first imports LangChain's vector stores (importing them here would add LangChain's retrievers
    to every start-up, over 100 ms)."""
    return ClassFamilyPatches(patcher, "langchain_core.vectorstores.base", "VectorStore", SEARCHES, _ASYNC_SEARCHES,
                              _Call, "langchain.vectorstore_patch")
