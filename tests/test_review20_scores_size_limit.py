"""A score's name, comment and text value are cut at the value size limit once redacted, also when
they are within the redaction margin past it: ``score()`` holds such a text whole (only a longer one
is cut and marked for cutting), and the mark alone decided the cut, so a comment of 1,300 bytes
under a limit of 1,000 was sent (and stored) whole. Real pipeline, loopback receiver."""

from __future__ import annotations

import time

import autotrace
from autotrace.bounds import TRUNCATION_MARK
from autotrace.testing.otlp_receiver import OtlpReceiver


def _cut_at_limit(text: str, char: str) -> bool:
    kept = text[:-len(TRUNCATION_MARK)]
    return text.endswith(TRUNCATION_MARK) and len(text.encode()) <= 1000 and kept == char * len(kept) and len(kept) > 900


def test_score_texts_within_the_redaction_margin_are_cut_at_the_limit(rx: OtlpReceiver, tmp_path) -> None:
    autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-cut", secret_key="sk-lf-cut",
                      unknown_tenant="default", export_interval=30.0, integrations=(), max_value_bytes=1000,
                      local_store="on", local_store_path=tmp_path / "s.db")
    with autotrace.start_span("answer") as span:
        span.score("commented", 1.0, comment="c" * 1300)
        span.score("label", "v" * 1300)
        span.score("n" * 1300, 0.5)
    assert autotrace.flush(10)
    deadline = time.monotonic() + 5
    while len(rx.scores) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    bodies = sorted((body for _, body in rx.scores), key=lambda body: body["name"])
    assert [body["name"][:1] for body in bodies] == ["c", "l", "n"]
    assert _cut_at_limit(bodies[0]["comment"], "c")
    assert _cut_at_limit(bodies[1]["value"], "v")
    assert _cut_at_limit(bodies[2]["name"], "n")
    stored = {score["name"][:1]: score for score in autotrace.local_store().scores()}  # type: ignore[union-attr]
    assert _cut_at_limit(stored["c"]["comment"], "c") and _cut_at_limit(stored["l"]["string_value"], "v")
