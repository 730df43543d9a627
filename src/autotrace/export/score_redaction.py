"""A score's redaction before it is routed (the pipeline thread's): its name, comment and value,
whatever their type, through the same detectors and hooks as spans, failing closed."""

from __future__ import annotations

from typing import Any

from .._internal import count, log_once
from ..bounds import truncate
from ..runtime import state
from ..scores import ScoreItem
from .redaction import FAILED, SCORE_COMMENT, SCORE_NAME, SCORE_VALUE, Redactor, redacting_for

_FIELDS = (("name", SCORE_NAME), ("comment", SCORE_COMMENT), ("value", SCORE_VALUE))


def redact_score(item: ScoreItem, redactor: Redactor) -> bool:
    """Redact ``item``'s body in place; False when it must not be sent. A value the redactor returns
    as other than text (or a number, for the value) is replaced; a score whose redaction raises, or
    whose name or value a hook drops, is dropped (counted): never exported raw."""
    if not redactor.enabled:
        return _cut(item.body)
    body = item.body
    if redactor.hooks:
        redacting_for(item.tenant)
    try:
        for key, hook_key in _FIELDS:
            if key not in body:
                continue
            value = body[key]
            new = (redactor.redact_text(value, hook_key, "score") if type(value) is str
                   else redactor.redact_value(hook_key, value, "score"))
            if isinstance(new, bytes):
                new = new.decode("utf-8", "replace")
            # a hook dropped it (the redactor gives texts as ""); an empty category was given so
            if new is None or (new == "" and (value != "" or key == "comment")):
                if key != "comment":  # a score with no name or value is not sent
                    count("scores_dropped.redacted")
                    return False
                del body[key]
            elif type(new) is str or (key == "value" and type(new) in (int, float)):
                body[key] = new
            else:
                count("redaction_unsupported_values")
                body[key] = FAILED
    except Exception as exc:  # fail closed: an unredacted score is never exported
        count("scores_dropped.redaction_failed")
        log_once("score_redaction_failed", "autotrace: a score was dropped: redaction failed (%s)",
                 type(exc).__name__)
        return False
    return _cut(body)


def _cut(body: dict[str, Any]) -> bool:
    """The texts cut at the size limit now that they are redacted (also one ``score()`` held whole,
    within the redaction margin past it, or one redaction made longer); True."""
    for key, _hook_key in _FIELDS:
        value = body.get(key)
        if type(value) is str:
            body[key] = truncate(value, state.max_value_bytes)
    return True
