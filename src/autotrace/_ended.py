"""An ending observation's fields: deferred ones computed, content serialised and bounded, and
the span attributes they become (``Observation.end``, ``spans.ObservationSpan.settle``)."""

from __future__ import annotations

from typing import Any

from . import bounds, schema
from ._internal import guarded_failure

#: Key under which ``defer`` keeps callables that compute more fields when the observation ends.
DEFERRED = "__deferred__"
#: Key under which ``defer(..., late=True)`` keeps those computed on the pipeline thread.
LATE = "__late__"
#: Fields that carry user content; not recorded while content capture is off.
CONTENT_FIELDS = frozenset({"input", "output", "query", "documents", "arguments", "result"})


def with_doc_count(fields: dict[str, Any]) -> dict[str, Any]:
    """A retrieval's fields with ``doc_count`` when its documents (or output) are a list given
    without their count (``start_retrieval(...).set_output(docs)``, ``observe(as_type="retriever")``)."""
    found = fields.get("documents")
    found = fields.get("output") if found is None else found
    return {**fields, "doc_count": len(found)} if type(found) in (list, tuple) else fields


def plain_fields(fields: dict[str, Any], max_value_bytes: int) -> dict[str, Any]:
    """``fields`` as the pipeline thread gets them: the content (the caller's data, which may change
    once the observation has ended) as the text it is exported as (``schema.serialize_io``),
    already bounded (``bounds.hold``: the limit plus a margin, so that redaction sees whole a secret
    the cut at the limit would split), so a waiting span never holds much more than an exported one.

    A new dict: what is left in it is mostly strings, numbers and small dicts of them, which the
    garbage collector never visits, so a span waiting in the queue adds about one dict to its
    collections (a callable holding the stream's state added ten, and frequent full collections)."""
    plain = {}
    texts = ""  # the content given as a ``str`` that may read as JSON, told from JSON text (``schema.TEXT_IO``)
    for key, value in fields.items():
        if key in CONTENT_FIELDS and value is not None:
            if not isinstance(value, str):
                value = schema.serialize_io(value)
            elif value[:1] in schema.JSON_FIRST:
                texts += f" {key}"
            value = bounds.hold(value, max_value_bytes)
        plain[key] = value
    if texts:
        plain[schema.TEXT_FIELDS] = texts
    return plain


def settled_attributes(obs_type: str, fields: dict[str, Any], max_value_bytes: int) -> dict[str, Any]:
    """An ended observation's span attributes, its late fields computed first."""
    return schema.observation_attributes(obs_type, resolved_fields(fields, LATE), max_value_bytes)


def resolved_fields(fields: dict[str, Any], key: str) -> dict[str, Any]:
    """The fields with the computations kept under ``key`` (``DEFERRED`` or ``LATE``) applied, in a
    new dict if there are any; content capture rules still hold. They never replace a field set
    before; their metadata merges into the metadata, key by key (a key set before is kept)."""
    deferred = fields.get(key)
    if not deferred:
        return fields
    result = dict(fields)
    del result[key]
    for compute, args, capture in deferred:
        try:
            computed = compute(*args)
        except Exception as exc:  # an extractor bug loses those fields, never the observation
            guarded_failure("deferred_fields", exc)
            continue
        for key, value in computed.items():
            if value is None or (not capture and key in CONTENT_FIELDS):
                continue
            if key not in result:
                result[key] = value
            elif key == "metadata" and type(value) is dict and type(result[key]) is dict:
                result[key] = {**value, **result[key]}
    return result
