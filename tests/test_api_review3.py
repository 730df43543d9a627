"""The manual API reviewed as a user holds it: scores on ended observations go to the tenant the
observation started with (on the wire, with that tenant's keys), the public API's type hints
resolve at run time, and metadata that cannot be read never raises into the application."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator, Mapping
from typing import Any

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import Traced, basic_auth


def test_a_score_on_an_ended_observation_goes_to_the_tenant_it_started_with(rx: OtlpReceiver) -> None:
    autotrace.install(langfuse_host="http://127.0.0.1:9", export_interval=0.05, integrations=(),
                      credentials={"acme": Credentials("pk-acme", "sk-acme", host=rx.endpoint),
                                   "globex": Credentials("pk-globex", "sk-globex", host=rx.endpoint)})
    with autotrace.tenant("acme"), autotrace.start_generation("answer") as gen:
        pass
    assert autotrace.flush(5)  # the trace has ended and is exported: no live span tells its tenant
    rx.wait_for_spans(1)
    with autotrace.tenant("globex"):  # a feedback endpoint serving another customer, say
        gen.score("helpful", 1)
    gen.score("thumbs", True)  # outside any tenant's scope
    assert autotrace.flush(5)
    sent = sorted((body["name"], body["traceId"], body["observationId"], headers["authorization"])
                  for headers, body in rx.scores)
    acme = basic_auth("pk-acme", "sk-acme")
    assert sent == [("helpful", gen.trace_id, gen.id, acme), ("thumbs", gen.trace_id, gen.id, acme)]
    assert autotrace.stats()["tenant_mismatch"] == 1  # the one given under globex
    assert "scores_dropped.no_tenant" not in autotrace.stats()


@autotrace.observe(as_type="evaluator", name="relevance")
def _relevance(target: autotrace.Observation) -> float:
    return 0.5


def test_an_evaluators_score_of_an_ended_observation_goes_to_the_tenant_it_started_with(rx: OtlpReceiver) -> None:
    """An evaluation run later, under another customer's scope (a batch job), scored into that
    customer's project: as ``Observation.score``, the score goes where the evaluated one went."""
    autotrace.install(langfuse_host="http://127.0.0.1:9", export_interval=0.05, integrations=(),
                      credentials={"acme": Credentials("pk-acme", "sk-acme", host=rx.endpoint),
                                   "globex": Credentials("pk-globex", "sk-globex", host=rx.endpoint)})
    with autotrace.tenant("acme"), autotrace.start_generation("answer") as gen:
        pass
    assert autotrace.flush(5)
    rx.wait_for_spans(1)
    with autotrace.tenant("globex"):
        assert _relevance(gen) == 0.5
    assert autotrace.flush(5)
    sent = [(body["name"], body["observationId"], headers["authorization"]) for headers, body in rx.scores]
    assert sent == [("relevance", gen.id, basic_auth("pk-acme", "sk-acme"))]


def _public_callables() -> list[tuple[str, typing.Any]]:
    found = []
    for name in autotrace.__all__:
        value = getattr(autotrace, name)
        if inspect.isfunction(value):
            found.append((name, value))
    for name, member in vars(autotrace.Observation).items():
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
            found.append((f"Observation.{name}", member.fget if isinstance(member, property) else member))
    return found


def test_the_public_api_has_docstrings_and_type_hints_that_resolve() -> None:
    """Tools that read hints at run time (``typing.get_type_hints``: pydantic, FastAPI, Sphinx) must
    not fail on a name imported only for type checkers."""
    problems = []
    for name, fn in _public_callables():
        if not (fn.__doc__ or "").strip():
            problems.append(f"{name}: no docstring")
        try:
            hints = typing.get_type_hints(fn)
        except Exception as exc:
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        unhinted = [p for p in inspect.signature(fn).parameters if p not in hints and p != "self"]
        if unhinted or "return" not in hints:
            problems.append(f"{name}: missing hints {unhinted or 'return'}")
    assert problems == []


class _Unreadable(Mapping[str, Any]):
    """A mapping of the application's whose reading fails (a lazy view over a closed resource)."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("the resource behind this mapping is closed")

    def __len__(self) -> int:
        return 1


def test_metadata_that_cannot_be_read_is_left_out_not_raised(traced: Traced) -> None:
    with autotrace.start_retrieval("kb", query="q", metadata=_Unreadable()) as ret:
        ret.update(metadata={"index": "faq"})
        ret.update(metadata=_Unreadable(), top_k=3)
    autotrace.event("note", metadata=_Unreadable())
    assert [(r["type"], r["name"], r["metadata"]) for r in traced.records()] == [
        ("retriever", "kb", {"index": "faq", "top_k": 3}), ("event", "note", {})]
    assert autotrace.stats()["metadata_invalid"] == 3
    assert "internal_errors.event" not in autotrace.stats()
