"""A categorical score whose value is the empty string (an LLM judge's empty verdict) is sent as
Langfuse takes it (its scores API takes any string): redaction took the unchanged "" for a value a
hook dropped, so ``score()`` returned an id for a score then dropped, counted as
``scores_dropped.redacted``. A value a hook does empty is still dropped. Loopback receiver."""

from __future__ import annotations

from typing import Any

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant


def _sent(rx: OtlpReceiver) -> dict[str, dict[str, Any]]:
    assert autotrace.flush(5)
    return {body["name"]: body for _, body in rx.scores}


def test_an_empty_categorical_value_is_sent(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    with autotrace.tenant("t"), autotrace.start_span("judge") as judge:
        assert autotrace.score("verdict", "", comment="") is not None
    sent = _sent(rx)
    assert {key: sent["verdict"][key] for key in ("value", "dataType", "traceId", "observationId")} == {
        "value": "", "dataType": "CATEGORICAL", "traceId": judge.trace_id, "observationId": judge.id}
    assert "comment" not in sent["verdict"]
    assert not any(key.startswith("scores_dropped") for key in autotrace.stats())


def test_a_value_a_hook_empties_is_still_dropped(rx: OtlpReceiver) -> None:
    def hook(key: str, value: Any, span_type: str) -> Any:
        return "" if key == "score.value" and value == "secret" else value

    install_one_tenant(rx, redact=hook)
    with autotrace.tenant("t"), autotrace.start_span("judge"):
        autotrace.score("emptied", "secret")
        autotrace.score("empty", "")
    assert sorted(_sent(rx)) == ["empty"]
    assert autotrace.stats()["scores_dropped.redacted"] == 1
