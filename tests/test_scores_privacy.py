"""Scores at their edges: name, comment and value redacted whatever their type (against a loopback
OTLP receiver), and ``autotrace.score()`` never raising into the application (local store)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import autotrace
from autotrace.runtime import state
from autotrace.scores import ScoreItem
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import Traced, install_one_tenant

EMAIL, PHONE = "john.doe@example.com", "+1 415 555 0100"


def _sent(rx: OtlpReceiver) -> dict[str, dict[str, Any]]:
    assert autotrace.flush(5)
    return {body["id"]: body for _, body in rx.scores}


def test_score_name_comment_and_value_are_redacted_whatever_their_type(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    with autotrace.tenant("t"), autotrace.start_generation("g") as gen:
        named = autotrace.score(f"reviewer {EMAIL}", 1)
        raw = autotrace.score("bytes comment", 1, comment=f"mail {EMAIL}".encode())  # type: ignore[arg-type]
        categorical = autotrace.score("categorical", f"call {PHONE} / {EMAIL}")
    # what score() hands over is normalised; the pipeline still redacts values of any other type
    assert state.pipeline is not None
    state.pipeline.submit(ScoreItem({"id": "direct", "traceId": gen.trace_id, "name": b"by " + EMAIL.encode(),
                                     "value": {"who": EMAIL}, "comment": b"\xff " + EMAIL.encode(),
                                     "dataType": "CATEGORICAL"}, "t"))
    sent = _sent(rx)
    assert EMAIL not in repr(sent) and PHONE not in repr(sent)
    assert sent[named]["name"] == "reviewer <EMAIL>"  # type: ignore[index]
    assert sent[raw]["comment"] == "mail <EMAIL>"  # type: ignore[index]
    assert sent[categorical]["value"] == "call <PHONE> / <EMAIL>"  # type: ignore[index]
    assert sent["direct"]["name"] == "by <EMAIL>" and sent["direct"]["comment"] == "\ufffd <EMAIL>"
    assert sent["direct"]["value"] == "<REDACTION_FAILED>"  # a mapping is no score value: replaced


def test_hooks_see_score_names_and_values_and_fail_closed(rx: OtlpReceiver) -> None:
    seen: list[tuple[str, Any, str]] = []

    def hook(key: str, value: Any, span_type: str) -> Any:
        if span_type == "score":
            seen.append((key, value, span_type))
        if key == "score.name" and value == "Jane's review":
            raise RuntimeError("hook bug")
        if key == "score.value" and value == 13:
            return None  # a hook may drop a value: then the score goes
        return value

    install_one_tenant(rx, redact=hook)
    with autotrace.tenant("t"), autotrace.start_generation("g"):
        failed = autotrace.score("Jane's review", 0.5)
        dropped = autotrace.score("unlucky", 13)
        kept = autotrace.score("quality", 0.25, comment="fine")
    sent = _sent(rx)
    assert set(sent) == {failed, kept} and dropped is not None
    assert sent[failed]["name"] == "<REDACTION_FAILED>"  # type: ignore[index]
    assert sent[kept]["name"] == "quality" and sent[kept]["value"] == 0.25  # type: ignore[index]
    assert ("score.name", "quality", "score") in seen and ("score.value", 0.25, "score") in seen
    assert autotrace.stats()["scores_dropped.redacted"] == 1


@pytest.mark.parametrize("kwargs", [
    {"trace_id": "run-42"},
    {"trace_id": ""},
    {"trace_id": "3f2a9c-xyz"},
    {"trace_id": "0" * 32},
    {"trace_id": 42},
    {"observation_id": "not-an-id"},
    {"name": ""},
    {"name": None},
    {"value": float("nan")},
    {"value": float("inf")},
    {"value": 10**400},
    {"value": None},
    {"value": "good", "data_type": "NUMERIC"},
    {"value": 0.5, "data_type": "BOOLEAN"},
    {"value": 1, "data_type": "PERCENT"},
    {"value": 1, "data_type": 3},
    {"comment": object()},
    {"tenant": "no spaces allowed"},
])
def test_score_never_raises_on_bad_arguments(traced: Traced, caplog: pytest.LogCaptureFixture,
                                             kwargs: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"name": "quality", "value": 0.9, "trace_id": "3f" * 16, **kwargs}
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        assert autotrace.score(**arguments) is None
        assert autotrace.score(**arguments) is None
    assert autotrace.stats()["scores_dropped.invalid"] == 2
    assert len([r for r in caplog.records if "score dropped" in r.getMessage()]) == 1  # logged once
    assert autotrace.flush(5) and autotrace.local_store().scores() == []  # type: ignore[union-attr]


def test_valid_scores_are_kept(traced: Traced) -> None:
    trace_id = "3F" * 16
    assert autotrace.score("ok", True, trace_id=trace_id, tenant="acme") is not None
    assert autotrace.score("ok", 1, trace_id=trace_id, data_type="boolean", comment=b"fine") is not None  # type: ignore[arg-type]
    assert autotrace.score("grade", "A", trace_id=trace_id, observation_id="ab" * 8) is not None
    assert autotrace.flush(5)
    stored = sorted(autotrace.local_store().scores(), key=lambda s: (s["name"], s["comment"] or ""))  # type: ignore[union-attr]
    assert [(s["name"], s["value"], s["string_value"], s["data_type"], s["comment"], s["trace_id"])
            for s in stored] == [("grade", None, "A", "CATEGORICAL", None, "3f" * 16),
                                 ("ok", 1, None, "BOOLEAN", None, "3f" * 16),
                                 ("ok", 1, None, "BOOLEAN", "fine", "3f" * 16)]
    assert stored[0]["observation_id"] == "ab" * 8


def test_scores_and_spans_are_counted_apart(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    with autotrace.tenant("t"), autotrace.start_chain("turn") as turn:
        with autotrace.start_generation("g"):
            pass
        turn.score("quality", 0.5)
        turn.score("helpful", True)
    assert autotrace.flush(5)
    stats = autotrace.stats()
    assert (stats["spans_exported"], stats["scores_exported"]) == (2, 2)
    assert (stats["spans_exported.langfuse:t"], stats["scores_exported.langfuse:t"]) == (2, 2)


def test_a_hook_dropping_a_scores_name_or_text_value_drops_the_score(rx: OtlpReceiver) -> None:
    """The redactor hands a dropped text on as "": a score with no name or value is not sent (it
    was sent with an empty name or value); a dropped comment is left out."""
    def hook(key: str, value: Any, span_type: str) -> Any:
        return None if value in ("secret-name", "secret-label", "secret-comment") else value

    install_one_tenant(rx, redact=hook)
    with autotrace.tenant("t"), autotrace.start_generation("g"):
        nameless = autotrace.score("secret-name", 0.5)
        valueless = autotrace.score("label", "secret-label")
        commentless = autotrace.score("quality", 0.25, comment="secret-comment")
    sent = _sent(rx)
    assert set(sent) == {commentless} and nameless is not None and valueless is not None
    assert "comment" not in sent[commentless]  # type: ignore[operator]
    assert autotrace.stats()["scores_dropped.redacted"] == 2
