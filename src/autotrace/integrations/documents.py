"""What a retrieval records of the documents it found: the first ``MAX_DOCUMENTS``.

A retriever or vector store returning thousands of documents would otherwise cost the caller's
thread more than the search itself (each one built and serialised, only to be cut at the value
limit). ``doc_count`` still counts every document; the others are counted in ``stats()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any, TypeVar

from .._internal import count

#: Documents (and their scores) recorded per retrieval.
MAX_DOCUMENTS = 100
#: Characters of a document's content (or of a text beside it) recorded as its preview.
CONTENT_CHARS = 200

_Document = TypeVar("_Document")


def recorded(documents: Iterable[_Document], total: int) -> tuple[list[_Document], dict[str, Any]]:
    """The documents to record out of ``documents`` (``total`` in all; an iterable is read no
    further than needed), and the metadata saying how many were kept when some were left out
    (those are counted as ``retrieval_documents_truncated``)."""
    kept = list(islice(documents, MAX_DOCUMENTS))
    if total <= len(kept):
        return kept, {}
    count("retrieval_documents_truncated", total - len(kept))
    return kept, {"documents_recorded": len(kept)}


def record_id(id_: Any) -> Any:
    """A store's id as recorded: text and integers as they are, any other (a UUID) as text."""
    return id_ if isinstance(id_, str | int) or id_ is None else str(id_)


def document(id_: Any, score: Any = None, content: Any = None,
             metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """One retrieved document as recorded: id, score, a short content preview and any metadata."""
    entry: dict[str, Any] = {"id": record_id(id_)}
    if score is not None:
        entry["score"] = float(score)
    if content is not None:
        entry["content"] = str(content)[:CONTENT_CHARS]
    if metadata:
        entry["metadata"] = metadata
    return entry
