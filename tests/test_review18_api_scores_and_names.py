"""Review 18 of the manual API: a score's texts are bounded by the value size limit (redacted whole
first), a ``Decimal`` score is a number, a traced callable object is named after its class, and an
exception whose ``__str__`` raises is still recorded on autotrace's own spans."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import autotrace
from autotrace import bounds
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import Traced, install_one_tenant, shape

LIMIT = 256
EMAIL = "john.doe@example.com"


def _sent(rx: OtlpReceiver) -> dict[str, dict[str, Any]]:
    assert autotrace.flush(5)
    return {body["id"]: body for _, body in rx.scores}


@pytest.mark.parametrize("redact", [True, False])
def test_a_scores_texts_are_cut_at_the_value_size_limit(rx: OtlpReceiver, redact: bool) -> None:
    install_one_tenant(rx, max_value_bytes=LIMIT, redact=redact)
    huge = "x" * 10_000_000
    with autotrace.tenant("t"), autotrace.start_span("scored"):
        named = autotrace.score("n" * 100_000, 1)
        commented = autotrace.score("q", 1, comment=huge)
        categorical = autotrace.score("label", huge)
    sent = _sent(rx)
    cut = "x" * (LIMIT - len(bounds.TRUNCATION_MARK.encode())) + bounds.TRUNCATION_MARK
    assert sent[named]["name"] == "n" * (LIMIT - len(bounds.TRUNCATION_MARK.encode())) + bounds.TRUNCATION_MARK
    assert sent[commented]["comment"] == cut
    assert sent[categorical]["value"] == cut
    assert autotrace.stats()["attributes_truncated"] == 3


def test_a_secret_across_a_scores_cut_is_redacted_whole(rx: OtlpReceiver) -> None:
    install_one_tenant(rx, max_value_bytes=LIMIT)
    comment = "y" * (LIMIT - 10) + f" {EMAIL} " + "z" * 10_000  # the e-mail crosses the limit
    with autotrace.tenant("t"), autotrace.start_span("scored"):
        scored = autotrace.score("q", 1, comment=comment)
    sent = _sent(rx)[scored]["comment"]
    assert "john" not in sent and "example" not in sent
    assert sent == ("y" * (LIMIT - 10) + " <EMAIL>").encode()[:LIMIT - len(bounds.TRUNCATION_MARK.encode())].decode(
    ).rstrip(" ") + bounds.TRUNCATION_MARK


def test_a_decimal_score_is_a_number(traced: Traced) -> None:
    with autotrace.start_span("scored") as span:
        span.score("precision", Decimal("0.75"))  # what a database's AVG() gives back, say
        autotrace.score("nan", Decimal("NaN"))
    assert autotrace.flush(5)
    store = autotrace.local_store()
    assert store is not None
    assert [(s["name"], s["value"], s["data_type"]) for s in store.scores()] == [("precision", 0.75, "NUMERIC")]
    assert autotrace.stats()["scores_dropped.invalid"] == 1  # a NaN is no finite number, a Decimal one neither


class _Retriever:
    """A callable object, as many tools and retrievers are."""

    def __call__(self, query: str) -> list[str]:
        return [query]


def test_a_traced_callable_object_is_named_after_its_class(traced: Traced) -> None:
    retrieve = autotrace.observe(_Retriever())
    tool = autotrace.traced_tool(_Retriever())
    assert retrieve("q") == ["q"] and tool("t") == ["t"]
    records = traced.records()
    assert shape(records) == [("span", "_Retriever", []), ("tool", "_Retriever", [])]
    assert records[1]["input"] == {"query": "t"}


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_an_exception_whose_text_raises_is_recorded(traced: Traced, caplog: pytest.LogCaptureFixture) -> None:
    @autotrace.observe
    def fails() -> None:
        raise _Unprintable

    with pytest.raises(_Unprintable):
        fails()
    record = traced.one()
    assert (record["level"], record["status_message"]) == ("ERROR", "_Unprintable: <str() failed>")
    (event,) = record["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.message"] == "<str() failed>"
    assert event["attributes"]["exception.type"] == f"{__name__}._Unprintable"
    assert "internal_errors.record_error" not in autotrace.stats()
    assert "internal error" not in caplog.text
