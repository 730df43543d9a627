"""Review 18 (fidelity): a decorated function that returned (or took) a ``str`` whose text reads as JSON
("48213", "12.50", "true", '{"a": 1}') was replayed as an int, a float, a bool, a dict: outputs are
recorded as text (a str as it is, anything else as its JSON) and the local store decoded any text
that read as JSON. Real decorated functions, the real pipeline and local store, the real replay and
CLI; the OTLP receiver shows what Langfuse gets is unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace.replay import replay
from tests.helpers import Traced, autotrace_cli, install_one_tenant, isolated_env

RAN: list[str] = []
#: (returned, what a replay hands back): a str stays the str; anything else comes back as its JSON reads.
OUTPUTS: list[tuple[Any, Any]] = [
    ("48213", "48213"), ("12.50", "12.50"), ("true", "true"), ("null", "null"), (' {"a": 1}', ' {"a": 1}'),
    ('"quoted"', '"quoted"'), ("[1, 2]", "[1, 2]"), ("plain words", "plain words"), ("", ""),
    (48213, 48213), (12.5, 12.5), (True, True), ({"a": 1}, {"a": 1}), ([1, "2"], [1, "2"]),
    (("t", 1), ["t", 1]),  # a tuple (as a model or dataclass) comes back as JSON holds it
]


@autotrace.traced_tool
def lookup(index: int) -> Any:
    RAN.append("lookup")
    return OUTPUTS[index][0]


@autotrace.observe
def echo(text: str) -> str:
    RAN.append("echo")
    return "ok"


@autotrace.traced_tool
def pages():
    RAN.append("pages")
    yield "1"
    yield "2"


def _turn() -> tuple[list[Any], str, list[str]]:
    with autotrace.start_chain("turn"):
        found = [lookup(i) for i in range(len(OUTPUTS))]
        said = echo("48213")
        paged = list(pages())
        with autotrace.start_generation("answer", model="m") as gen:
            gen.set_output("done")
        return found, said, paged


def test_a_replay_hands_back_a_str_output_as_the_str_it_was(traced: Traced) -> None:
    original = _turn()
    assert original[2] == ["1", "2"]
    (summary,) = autotrace.local_store().traces() if autotrace.flush(10) else []
    records = traced.trace(summary["trace_id"])
    at = next(r["id"] for r in records if r["name"] == "answer")
    RAN.clear()
    result = replay(records, at, _turn)
    assert RAN == []
    found, said, paged = result.result
    assert [(value, type(value)) for value in found] == [(want, type(want)) for _, want in OUTPUTS]
    assert (said, paged) == ("ok", ["12"])  # a generator's recorded text: one item, as before
    by_name = {r["name"]: r for r in records}
    assert (by_name["echo"]["input"], by_name["echo"]["output"]) == ({"text": "48213"}, "ok")
    assert by_name["pages"]["output"] == "12"


def test_every_kind_of_observation_keeps_text_input_and_output_as_text(traced: Traced) -> None:
    with autotrace.start_span("s", input="42") as span:
        span.set_output({"n": 42})
    with autotrace.start_tool("t", arguments='{"q": 1}') as tool:
        tool.update(result="false")
    with autotrace.start_retrieval("r", query="-7") as found:
        found.update(documents=[{"id": "1"}])
    with autotrace.start_span("d", input={"q": "42"}) as span:
        span.set_output("[1]")
    records = {r["name"]: (r["input"], r["output"]) for r in traced.records()}
    assert records == {"s": ("42", {"n": 42}), "t": ('{"q": 1}', "false"), "r": ("-7", [{"id": "1"}]),
                       "d": ({"q": "42"}, "[1]")}


def test_show_prints_a_str_output_as_its_text(traced: Traced, tmp_path: Path) -> None:
    with autotrace.start_chain("turn"):
        lookup(1)  # "12.50"
        lookup(4)  # ' {"a": 1}'
    assert autotrace.flush(10)
    stored = sorted(((r["name"], r["output"]) for r in autotrace.local_store().observations()), key=repr)
    assert stored == [("lookup", ' {"a": 1}'), ("lookup", '12.50'), ("turn", None)]
    env = isolated_env(tmp_path)
    done = autotrace_cli(env, tmp_path, "--db", str(traced.path), "query", "has name", "--json")
    assert done.returncode == 0, done.stderr
    assert sorted(str(o["output"]) for o in json.loads(done.stdout)) == [' {"a": 1}', "12.50", "None"]
    (summary,) = autotrace.local_store().traces()
    shown = autotrace_cli(env, tmp_path, "--db", str(traced.path), "show", summary["trace_id"])
    assert shown.returncode == 0, shown.stderr
    assert [line.split("out: ")[1] for line in shown.stdout.splitlines() if "out: " in line] == ["12.50", '{"a": 1}']


@pytest.mark.parametrize(("index", "text"), [(0, "48213"), (4, ' {"a": 1}'), (9, "48213"), (7, "plain words")])
def test_langfuse_gets_the_same_attributes_as_before(rx: Any, index: int, text: str) -> None:
    install_one_tenant(rx)
    with autotrace.tenant("t"):
        lookup(index)
    assert autotrace.flush(10)
    (span,) = rx.wait_for_spans(1)
    assert span.attributes == {  # no mark of the local store's reaches Langfuse
        "autotrace.tenant": "t", "langfuse.observation.type": "tool", "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "lookup", "langfuse.observation.metadata.tool_name": '"lookup"',
        "langfuse.observation.input": f'{{"index": {index}}}', "langfuse.observation.output": text}
