"""An endpoint that takes part of an export says so in OTLP's ``partial_success``: how many spans it
refused for good and why. Those are counted as dropped (not exported), said once in a warning, and
never sent again; a message alone is a warning. Real OTLP/HTTP to a loopback receiver, its answers
built with the protobuf classes of ``opentelemetry-proto``."""

from __future__ import annotations

import json
import logging
import random

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

import autotrace
from autotrace.export.destination import Destination
from autotrace.export.otlp_response import MAX_MESSAGE_CHARS, partial_success
from autotrace.export.sink import OK, SinkResult
from autotrace.scores import ScoreItem
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_default_tenant, numbered_spans

PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json; charset=utf-8"}


def _answer(rejected: int, message: str) -> bytes:
    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = rejected
    response.partial_success.error_message = message
    return response.SerializeToString()


# -- reading the answer -------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "headers", "expected"), [
    (_answer(3, "3 spans had no trace id"), PROTOBUF, (3, "3 spans had no trace id")),
    (_answer(0, "attribute values cut to 1 MB"), PROTOBUF, (0, "attribute values cut to 1 MB")),
    (ExportTraceServiceResponse().SerializeToString(), PROTOBUF, (0, "")),
    (b"", PROTOBUF, (0, "")),
    (b'{"partialSuccess": {"rejectedSpans": "2", "errorMessage": "bad ids"}}', JSON, (2, "bad ids")),
    (b'{"partial_success": {"rejected_spans": 4}}', JSON, (4, "")),
    (b"{}", JSON, (0, "")),
    # no content type: the body's shape says which
    (b' {"partialSuccess": {"rejectedSpans": 1}}', {}, (1, "")),
    (_answer(5, "x"), {}, (5, "x")),
], ids=["protobuf", "protobuf-warning", "protobuf-empty-message", "empty-body", "json-camel-string-count",
        "json-snake", "json-empty", "json-untyped", "protobuf-untyped"])
def test_partial_success_is_read_from_protobuf_and_json_answers(body: bytes, headers: dict[str, str],
                                                               expected: tuple[int, str]) -> None:
    assert partial_success(body, headers) == expected


@pytest.mark.parametrize(("body", "headers"), [
    (b"<html>ok</html>", {"content-type": "text/html"}),
    (b'{"partialSuccess": {"rejectedSpans": "1e3"}}', JSON),
    (b'{"partialSuccess": {"rejectedSpans": true}}', JSON),
    (b'{"partialSuccess": [1]}', JSON),
    (b"[1, 2]", JSON),
    (b"\x0a\x05\x08\x03", PROTOBUF),  # a field longer than the body
    (b"\x0a\x02\x08", PROTOBUF),  # a varint cut short
    (b"\x0f", PROTOBUF),  # wire type 7
], ids=["html", "json-float-string", "json-bool", "json-list", "json-array", "protobuf-short-field",
        "protobuf-short-varint", "protobuf-bad-wire-type"])
def test_an_answer_that_cannot_be_read_is_an_answer_without_partial_success(body: bytes,
                                                                             headers: dict[str, str]) -> None:
    assert partial_success(body, headers) == (0, "")


def test_a_negative_count_is_none_and_a_message_is_one_printable_line_cut_to_its_limit() -> None:
    assert partial_success(_answer(-7, "x"), PROTOBUF) == (0, "x")
    rejected, message = partial_success(_answer(1, "line one\nline\x1btwo " + "y" * 1_000), PROTOBUF)
    assert rejected == 1
    assert message.startswith("line one line two ") and len(message) == MAX_MESSAGE_CHARS
    assert message.isprintable()


def test_partial_success_never_raises_on_random_bytes() -> None:
    rng = random.Random(8)
    valid = _answer(2, "ok")
    for _ in range(20_000):
        size = rng.randint(0, 40)
        if rng.random() < 0.5:  # damage a real answer: most such bodies still start as one
            body = bytearray(valid)
            for _ in range(rng.randint(1, 3)):
                body[rng.randrange(len(body))] = rng.randrange(256)
            body = bytes(body)
        else:
            body = rng.randbytes(size)
        rejected, message = partial_success(body, PROTOBUF if rng.random() < 0.7 else JSON)
        assert rejected >= 0 and len(message) <= MAX_MESSAGE_CHARS and message.isprintable()


# -- what the exporter makes of it ------------------------------------------------------------------
@pytest.mark.parametrize("as_json", [False, True], ids=["protobuf", "json"])
def test_spans_an_endpoint_refuses_are_counted_as_dropped_said_once_and_not_sent_again(
        as_json: bool, caplog: pytest.LogCaptureFixture) -> None:
    with OtlpReceiver() as rx, caplog.at_level(logging.WARNING, logger="autotrace"):
        rx.answer_partial_success(2, "2 spans had an invalid parent id", as_json=as_json, times=1)
        install_default_tenant(rx, "part")
        numbered_spans(5)
        assert autotrace.flush(10)
        assert len(rx.requests) == 1  # a partial success is never retried
        numbered_spans(3, prefix="later")
        assert autotrace.flush(10)
        assert len(rx.requests) == 2 and len(rx.spans) == 8
    stats = autotrace.stats()
    assert stats["spans_dropped.rejected"] == 2
    assert stats["spans_exported"] == stats["spans_exported.langfuse:default"] == 3 + 3
    assert "export_failures" not in stats and "spans_dropped.export_failed" not in stats
    warnings = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert warnings == ["autotrace: default refused 2 span(s) of a batch of 5 (2 spans had an invalid "
                        "parent id); those dropped (counted as spans_dropped.rejected), the rest exported"]


def test_a_refusal_said_again_is_counted_again_but_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with OtlpReceiver() as rx, caplog.at_level(logging.WARNING, logger="autotrace"):
        rx.answer_partial_success(1, "too old")
        install_default_tenant(rx, "part")
        for round_ in range(3):
            numbered_spans(2, prefix=f"round-{round_}")
            assert autotrace.flush(10)
    stats = autotrace.stats()
    assert stats["spans_dropped.rejected"] == 3 and stats["spans_exported"] == 3
    assert sum("refused 1 span(s)" in r.getMessage() for r in caplog.records) == 1


def test_a_message_with_no_span_refused_is_a_warning_and_every_span_is_exported(
        caplog: pytest.LogCaptureFixture) -> None:
    with OtlpReceiver() as rx, caplog.at_level(logging.WARNING, logger="autotrace"):
        rx.answer_partial_success(0, "attribute values over 1 MB were cut")
        install_default_tenant(rx, "part")
        numbered_spans(4)
        assert autotrace.flush(10)
    stats = autotrace.stats()
    assert stats["spans_exported"] == 4 and stats["export_warnings.langfuse:default"] == 1
    assert not [name for name in stats if name.startswith("spans_dropped")]
    assert ("autotrace: default took a batch with a warning: attribute values over 1 MB were cut"
            in caplog.text)


def test_refusals_in_each_request_of_a_batch_sent_in_several_add_up() -> None:
    with OtlpReceiver() as rx:
        rx.answer_partial_success(1, "one refused")
        install_default_tenant(rx, "part", max_export_bytes=1_500)  # a few spans a request
        for i in range(12):
            with autotrace.start_span(f"wide-{i}") as span:
                span.set_output("w" * 300)
        assert autotrace.flush(10)
        requests = len(rx.requests)
    assert requests >= 3  # one batch, several requests, each with one span refused
    stats = autotrace.stats()
    assert stats["spans_dropped.rejected"] == requests
    assert stats["spans_exported"] == 12 - requests


def test_a_count_larger_than_the_batch_drops_the_batch_and_no_more(caplog: pytest.LogCaptureFixture) -> None:
    with OtlpReceiver() as rx, caplog.at_level(logging.WARNING, logger="autotrace"):
        rx.answer_partial_success(1_000, "all refused", times=1)
        install_default_tenant(rx, "part")
        numbered_spans(3)
        assert autotrace.flush(10)
    stats = autotrace.stats()
    assert stats["spans_dropped.rejected"] == 3 and "spans_exported" not in stats
    assert "refused 1000 span(s) of a batch of 3 (all refused)" in caplog.text


def test_a_batch_with_scores_counts_its_scores_exported_and_its_refused_spans_dropped(
        caplog: pytest.LogCaptureFixture) -> None:
    with OtlpReceiver() as rx, caplog.at_level(logging.WARNING, logger="autotrace"):
        rx.answer_partial_success(1, "one span refused", times=1)
        install_default_tenant(rx, "part")
        for i in range(3):
            with autotrace.start_span(f"scored-{i}"):
                autotrace.score("helpful", i % 2 == 0)
        assert autotrace.flush(10)
        assert len(rx.scores) == 3
    stats = autotrace.stats()
    assert stats["scores_exported.langfuse:default"] == 3
    assert stats["spans_dropped.rejected"] == 1 and stats["spans_exported.langfuse:default"] == 2
    assert "refused 1 span(s) of a batch of 3 (one span refused)" in caplog.text


def test_items_named_as_refused_and_spans_counted_as_refused_are_dropped_apart(
        caplog: pytest.LogCaptureFixture) -> None:
    """A Langfuse batch whose score was refused (HTTP 422) and whose spans were partly refused."""

    class Sink:
        name = "langfuse:t"

        def export(self, items: list[object]) -> SinkResult:
            score = next(item for item in items if type(item) is ScoreItem)
            return SinkResult(ok=True, reason="HTTP 422", rejected=(score,), rejected_spans=1, message="bad span")

        def close(self) -> None:
            pass

    destination = Destination("langfuse:t", Sink(), max_queue=100, max_batch=100, max_retries=3)
    scores = [ScoreItem({"name": "helpful", "value": 1}, "t"), ScoreItem({"name": "helpful", "value": 0}, "t")]
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        destination.export([object(), object(), object(), *scores])
    stats = autotrace.stats()
    assert stats["scores_dropped.export_failed"] == 1 and stats["scores_exported.langfuse:t"] == 1
    assert stats["spans_dropped.rejected"] == 1 and stats["spans_exported.langfuse:t"] == 2
    assert "refused 1 item(s) of a batch (HTTP 422)" in caplog.text
    assert "refused 1 span(s) of a batch of 3 (bad span)" in caplog.text


def test_an_accepted_answer_without_partial_success_is_the_shared_ok() -> None:
    """The common answer allocates nothing: its outcome is ``OK`` itself."""
    from autotrace.export.otlp_http import _read_answer

    assert _read_answer(ExportTraceServiceResponse().SerializeToString(), PROTOBUF) is OK
    assert _read_answer(json.dumps({}).encode(), JSON) is OK
    assert _read_answer(b"", {}) is OK
