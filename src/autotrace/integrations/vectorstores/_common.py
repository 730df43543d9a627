"""The mechanism every vector-store integration shares: a retrieval around a search (or, inside a
framework retriever, enrichment of that retriever), and a span with a count around a write.

A read that returns stored documents without ranking them (a fetch by id, a filtered listing) is a
retrieval too: its request names ``operation`` and the ids asked for (``requested``), its documents
have no scores, and a page of a listing records where the next page starts (``Page``)."""

from __future__ import annotations

import inspect
import threading
import weakref
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from itertools import chain, islice
from typing import Any, NamedTuple

from ... import recorder
from ..._internal import count, guarded_failure
from ...observation import CurrentDuring, Observation, ObservationType
from .. import ownership
from ..documents import MAX_DOCUMENTS, record_id, recorded


class Batch(NamedTuple):
    """One query's results: how many the store returned, and its documents, made lazily so that
    only the recorded ones (``documents.MAX_DOCUMENTS`` across the batches) are ever built.

    A search of very many queries may put the results of all those after its first
    ``MAX_DOCUMENTS`` in one last batch (``queries``: how many it holds), sparing a batch per query."""

    count: int
    documents: Iterable[dict[str, Any]]
    queries: int = 1


class Groups(list[Batch]):
    """The results of a grouped search, one batch per group: recorded with the number of groups
    and the documents of each (``doc_counts``), however many groups there are."""


class Page(list[Batch]):
    """One page of a listing (Qdrant's ``scroll``), recorded with ``metadata.next_page_offset``:
    where the next page starts, absent on the last page."""

    def __init__(self, batches: Iterable[Batch], next_offset: Any) -> None:
        super().__init__(batches)
        self.next_offset = next_offset


Describe = Callable[[Any, tuple[Any, ...], dict[str, Any]], dict[str, Any]]
#: The batches of a response, or None when the call returned before its results were known.
Results = Callable[[Any, dict[str, Any]], list[Batch] | None]
Count = Callable[[Any, tuple[Any, ...], dict[str, Any]], int | None]
#: What a write's response says failed though the call returned (a batched write's failed
#: batches), as the write's error message; None when nothing did.
Failed = Callable[[Any], str | None]
#: What a write's response says it did (a delete's count of the documents it deleted), as the
#: write's metadata; None when it says nothing.
Reported = Callable[[Any], dict[str, Any] | None]


def requested(fields: dict[str, Any], operation: str, ids: Any) -> dict[str, Any]:
    """``fields`` of an unranked read, with its ``operation`` and the ids asked for (``with_ids``)."""
    fields["operation"] = operation
    return with_ids(fields, ids)


def with_ids(fields: dict[str, Any], ids: Any) -> dict[str, Any]:
    """``fields`` with, in ``metadata.ids``, the first ``MAX_DOCUMENTS`` of the ids a read asks for
    or a search is restricted to (``metadata.ids_requested``: how many, when there were more).
    Only a list, tuple or single id is read: an iterator is the store's to consume."""
    if isinstance(ids, str | int):
        ids = [ids]
    if isinstance(ids, list | tuple) and ids:
        metadata = fields.setdefault("metadata", {})
        metadata["ids"] = [record_id(i) for i in islice(ids, MAX_DOCUMENTS)]
        if len(ids) > MAX_DOCUMENTS:
            metadata["ids_requested"] = len(ids)
    return fields


class _Search(CurrentDuring):
    """One traced search: its own retriever observation, or an owner to enrich.

    ``with search:`` around the store call makes its observation current, so work the store does
    inside (embedding the query text, say) nests under it; an error is recorded and ends it.
    """

    __slots__ = ("owner", "request", "store")

    def __init__(self, store: str, operation: str, describe: Describe, instance: Any, args: Any, kwargs: Any) -> None:
        super().__init__(None)
        self.owner: Observation | None = None
        self.store = store
        self.request: dict[str, Any] = {}
        try:
            found = ownership.owner(ObservationType.RETRIEVER)
            if found is ownership.FOREIGN:
                return
            self.request = describe(instance, args, kwargs)
            if isinstance(found, Observation):
                self.owner = found
                return
            self.obs = recorder.start(ObservationType.RETRIEVER, f"{store}.{operation}")
            self.obs.update(store=store, **self.request)
        except Exception as exc:
            guarded_failure(f"{store}.search", exc)

    def done(self, response: Any, results: Results) -> None:
        try:
            batches = results(response, self.request)
            if self.owner is not None:
                self._enrich_owner(self.owner, batches or ())
            elif self.obs is not None and batches is not None:
                self.obs.update(**_fields(batches))
        except Exception as exc:
            guarded_failure(f"{self.store}.results", exc)
        if self.obs is not None:
            self.obs.end()

    def _enrich_owner(self, owner: Observation, batches: Iterable[Batch]) -> None:
        """The owner records the documents its framework returns (and counts those it leaves out);
        the store adds what the owner lacks: where it searched, what it was asked (``top_k``: for
        MMR, the candidates fetched; the filter) and, when the owner ends, the store's scores of the
        documents the owner kept (a framework may drop or reorder the store's results)."""
        request = self.request
        ownership.enrich(owner, store=self.store, collection=request.get("collection"), top_k=request.get("top_k"),
                         filter=request.get("filter"), metadata={"store": self.store})
        found = chain.from_iterable(b.documents for b in batches)
        scored = [(d.get("id"), d["score"]) for d in islice(found, MAX_DOCUMENTS) if "score" in d]
        if scored:
            _scores_for(owner, scored)

    def exited(self, error: BaseException | None) -> None:
        if error is not None and self.obs is not None:
            self.obs.record_error(error)
            self.obs.end()


#: Owners -> the scores of each search they own, read by their one ``_owner_scores`` when they end
#: (held weakly: forgotten with the owner).
_SEARCHES: weakref.WeakKeyDictionary[Observation, list[list[tuple[Any, float]]]] = weakref.WeakKeyDictionary()
_SEARCHES_LOCK = threading.Lock()  # an owner's searches may run in several threads (a fan-out)


def _scores_for(owner: Observation, scored: list[tuple[Any, float]]) -> None:
    """Keep a search's ``scored`` documents for ``owner``, which computes its scores once when it
    ends. An owner searching in a loop holds the searches' scores only while fewer than
    ``MAX_DOCUMENTS`` are held; later ones are counted as ``retrieval_owner_scores_dropped``."""
    with _SEARCHES_LOCK:
        searches = _SEARCHES.get(owner)
        if searches is None:
            searches = _SEARCHES[owner] = []
            owner.defer(_owner_scores_of, owner.fields, searches)
        if sum(map(len, searches)) >= MAX_DOCUMENTS:
            count("retrieval_owner_scores_dropped")
            return
        searches.append(scored)


def _owner_scores_of(fields: dict[str, Any], searches: list[list[tuple[Any, float]]]) -> dict[str, Any]:
    """The owner's ``scores`` from the first of its searches that gives any (``_owner_scores``)."""
    return next(filter(None, (_owner_scores(fields, scored) for scored in searches)), {})


def _owner_scores(fields: dict[str, Any], scored: list[tuple[Any, float]]) -> dict[str, Any]:
    """The owner's ``scores`` once it has ended (never replacing its framework's own): the store's
    score of each document it recorded, matched by id (None for one the store did not return);
    without ids to match, the store's scores if it kept all the store's results or says nothing
    of what it kept (a retrieval the user started)."""
    by_id: dict[Any, float] = {}
    for id_, score in scored:
        by_id.setdefault(id_, score)
    documents = fields.get("documents")
    if isinstance(documents, list):
        aligned = [by_id.get(d.get("id")) if isinstance(d, dict) else None for d in documents]
        if any(score is not None for score in aligned):
            return {"scores": aligned}
    if fields.get("doc_count") in (None, len(scored)):  # nothing recorded of what it kept, or all of it
        return {"scores": [score for _, score in scored]}
    return {}


#: How a search whose results arrive late stops without failing: its results ran out, or the
#: caller stopped reading them (``break``, ``close()``, the iterator dropped).
_STOPS = (GeneratorExit, StopIteration, StopAsyncIteration)


class Pending:
    """A retrieval whose results arrive after the call that started it returned (rows streamed or
    fetched later): the results are added as they come, the first ``MAX_DOCUMENTS`` documents
    kept, and it ends exactly once, with what arrived until then."""

    __slots__ = ("count", "documents", "ended", "search")

    def __init__(self, search: _Search) -> None:
        self.search = search
        self.count = 0
        self.documents: list[dict[str, Any]] = []
        self.ended = False

    def add(self, count: int, documents: Iterable[dict[str, Any]]) -> None:
        """``count`` more results; ``documents`` (theirs) are read only while there is room."""
        self.count += count
        room = MAX_DOCUMENTS - len(self.documents)
        if room > 0:
            self.documents.extend(islice(documents, room))

    def finish(self, error: BaseException | None = None) -> None:
        """End the retrieval (once): ``error`` is recorded unless it is the results' normal end."""
        if self.ended:
            return
        self.ended = True
        if error is not None and not isinstance(error, _STOPS) and self.search.obs is not None:
            try:
                self.search.obs.record_error(error)
            except Exception as exc:  # the caller's error (if any) is the store's, not this one
                guarded_failure(f"{self.search.store}.record_error", exc)
        self.search.done(self, _arrived)


def _arrived(pending: Pending, request: dict[str, Any]) -> list[Batch]:
    return [Batch(pending.count, pending.documents)]


def pending_search(store: str, operation: str, describe: Describe, instance: Any, args: Any,
                   kwargs: Any) -> Pending | None:
    """Start a retrieval whose results arrive later (``Pending``); None when nothing records it."""
    search = _Search(store, operation, describe, instance, args, kwargs)
    return None if search.obs is None and search.owner is None else Pending(search)


def _fields(batches: list[Batch]) -> dict[str, Any]:
    """The retrieval's fields for the store's results: the recorded documents and their scores,
    one per document (None for one without: a row whose distance is NULL)."""
    total = sum(b.count for b in batches)
    flat, metadata = recorded(chain.from_iterable(b.documents for b in batches), total)
    scores = [d.get("score") for d in flat]
    ranked = [score for score in scores if score is not None]
    if isinstance(batches, Groups):
        metadata.update(groups=len(batches), doc_counts=_doc_counts(batches))
    elif len(batches) > 1:
        metadata["doc_counts"] = _doc_counts(batches)
    if isinstance(batches, Page) and batches.next_offset is not None:
        metadata["next_page_offset"] = record_id(batches.next_offset)
    if ranked:  # stores return results best first, whether scores are similarities or distances
        metadata["top_score"] = ranked[0]
    return {"documents": flat, "doc_count": total, "scores": scores if ranked else None, "metadata": metadata}


def _doc_counts(batches: list[Batch]) -> list[int]:
    """The count of each of the first ``MAX_DOCUMENTS`` queries (or groups); those of the others
    are left out, counted as ``retrieval_doc_counts_truncated``."""
    counts = [b.count for b in islice(batches, MAX_DOCUMENTS) if b.queries == 1]
    left_out = sum(b.queries for b in batches) - len(counts)
    if left_out > 0:
        count("retrieval_doc_counts_truncated", left_out)
    return counts


def search_wrapper(store: str, operation: str, describe: Describe, results: Results,
                   asynchronous: bool = False) -> Callable[..., Any]:
    """A wrapt wrapper recording ``operation`` of ``store`` as a retrieval."""
    if asynchronous:
        async def traced_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            search = _Search(store, operation, describe, instance, args, kwargs)
            if search.obs is None and search.owner is None:
                return await wrapped(*args, **kwargs)
            with search:
                response = await wrapped(*args, **kwargs)
            search.done(response, results)
            return response

        return traced_async

    def traced(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        search = _Search(store, operation, describe, instance, args, kwargs)
        if search.obs is None and search.owner is None:
            return wrapped(*args, **kwargs)
        with search:
            response = wrapped(*args, **kwargs)
        search.done(response, results)
        return response

    return traced


def _start_write(store: str, operation: str, describe: Describe, counter: Count, instance: Any, args: Any,
                 kwargs: Any) -> AbstractContextManager[Any]:
    """The write's span, to use with ``with``: current during the call, ended (with any error)
    after it; if it cannot be started, a context that does nothing."""
    try:
        described = describe(instance, args, kwargs)  # its ``metadata``: what else the write names
        metadata = {**described.get("metadata", {}), "count": counter(instance, args, kwargs),
                    "collection": described.get("collection")}
        return recorder.start_with(ObservationType.SPAN, f"{store}.{operation}", f"{store}.write", store=store,
                                   operation=operation, metadata=metadata)
    except Exception as exc:
        guarded_failure(f"{store}.write", exc)
        return nullcontext()


def write_wrapper(store: str, operation: str, describe: Describe, counter: Count, asynchronous: bool = False,
                  failed: Failed | None = None, reported: Reported | None = None) -> Callable[..., Any]:
    """A wrapt wrapper recording a write (add/upsert/delete) as a span with its count; with
    ``failed``, a response reporting failures it did not raise marks it failed; with ``reported``,
    what the response says the write did is added to its metadata (``_report``)."""
    report = failed is not None or reported is not None
    if asynchronous:
        async def traced_async(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
            with _start_write(store, operation, describe, counter, instance, args, kwargs) as obs:
                response = await wrapped(*args, **kwargs)
                if report and obs is not None:
                    _report(store, obs, failed, reported, response)
                return response

        return traced_async

    def traced(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        with _start_write(store, operation, describe, counter, instance, args, kwargs) as obs:
            response = wrapped(*args, **kwargs)
            if report and obs is not None:
                _report(store, obs, failed, reported, response)
            return response

    return traced


def _report(store: str, obs: Observation, failed: Failed | None, reported: Reported | None, response: Any) -> None:
    """Mark the write ``obs`` failed (level ERROR) if its ``response`` says some of it failed, and
    record what the response says it did."""
    try:
        if failed is not None and (message := failed(response)) is not None:
            obs.record_error(message)
        if reported is not None and (metadata := reported(response)):
            obs.update(metadata=metadata)
    except Exception as exc:
        guarded_failure(f"{store}.write", exc)


def argument(args: tuple[Any, ...], kwargs: dict[str, Any], name: str, position: int | None,
             default: Any = None) -> Any:
    """A call argument by keyword or position (positions count after ``self``; None: keyword only)."""
    if name in kwargs:
        return kwargs[name]
    return args[position] if position is not None and len(args) > position else default


def positions(function: Callable[..., Any]) -> dict[str, int]:
    """Where each parameter of ``function`` that can be given by position is (after ``self``);
    empty if its signature cannot be read."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    try:
        names = [p.name for p in inspect.signature(function).parameters.values() if p.kind in kinds]
    except (TypeError, ValueError):
        return {}
    return {name: index for index, name in enumerate(names[1:])}
