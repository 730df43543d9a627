"""Fuzzing review 15: ``autotrace replay``'s ``--set KEY=VALUE`` and ``--messages-file`` inputs.

Properties: a value written as JSON comes back as that value; anything else is the text as typed
or one ``ValueError`` line, never another exception; through the CLI a bad input is exit 2 and
one stderr line before the program runs. Pinned regressions: JSON nested too deeply was a
``RecursionError`` traceback, and a messages file with NaN, or a value with a lone surrogate,
was accepted and failed the replayed call inside the program."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from autotrace import cli
from autotrace.export.local_store import LocalStore
from autotrace.replay import parse_overrides

_FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False,
                     allow_infinity=False) | _TEXT,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
                     max_leaves=8)
_KEY = st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), min_size=1, max_size=3).map(".".join)
_DEEP = "[" * 100_000


@_FAST
@given(st.dictionaries(_KEY.filter(lambda k: k != "model"), _JSON, max_size=4), st.none() | _TEXT)
def test_values_written_as_json_come_back_as_written(values: dict[str, Any], model: str | None) -> None:
    items = [f"{key}={json.dumps(value)}" for key, value in values.items()]
    expected: dict[str, Any] = {"model_parameters": values} if values else {}
    if model is not None and model.strip():
        items.append(f"model={json.dumps(model)}")  # quoted, as JSON
        expected["model"] = model
    assert parse_overrides(items) == expected


@_FAST
@given(st.lists(st.text(max_size=30), max_size=4))
@example(["x=" + _DEEP])
@example(["model=null", "model=", "stop=\"\\ud800\"", "t=NaN", "x=\udcff"])
def test_any_setting_is_an_override_or_one_value_error_line(items: list[str]) -> None:
    try:
        overrides = parse_overrides(items)
    except ValueError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300
        return
    json.dumps(overrides, allow_nan=False, ensure_ascii=False).encode("utf-8")  # the SDK can send it
    assert isinstance(overrides.get("model", ""), str) and overrides.get("model", "x").strip()


@_FAST
@given(st.binary(max_size=200) | st.builds(str.encode, st.text(max_size=60)) | st.builds(
    lambda v: json.dumps(v).encode(), _JSON))
@example(_DEEP.encode())
@example(b'[{"role": "user", "content": NaN}]')
@example(b'[{"role": "user", "content": "\\ud800"}]')
def test_any_messages_file_is_a_list_or_one_value_error_line(tmp_path_factory: pytest.TempPathFactory,
                                                              raw: bytes) -> None:
    path = tmp_path_factory.mktemp("m") / "messages.json"
    path.write_bytes(raw)
    try:
        overrides = parse_overrides([], str(path))
    except ValueError as exc:
        assert str(exc).startswith(f"--messages-file {path}") and "\n" not in str(exc)
        return
    assert overrides == {"messages": json.loads(raw), "input": json.loads(raw)}
    json.dumps(overrides, allow_nan=False, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(("items", "message"), [
    (["x=" + _DEEP], f"--set {'x=' + '[' * 78!r}: nested too deeply"),  # the setting's first 80 characters
    (['stop="\\ud800"'], "--set 'stop=\"\\\\ud800\"': holds a lone surrogate, which is not UTF-8 text"),
    (["model=null"], None),
])
def test_pinned_settings(items: list[str], message: str | None) -> None:
    """Before: a ``RecursionError``; a surrogate sent on (the SDK's UTF-8 encoding failed the call);
    ``model=null`` became the model ``None``."""
    if message is None:
        assert parse_overrides(items) == {"model": "null"}
        return
    with pytest.raises(ValueError) as raised:
        parse_overrides(items)
    assert str(raised.value) == message


def test_a_messages_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Before: "not a JSON list of messages (Unexpected UTF-8 BOM)" for a file Notepad saved."""
    path = tmp_path / "m.json"
    path.write_text('\ufeff[{"role": "user", "content": "hi"}]', encoding="utf-8")
    messages = [{"role": "user", "content": "hi"}]
    assert parse_overrides([], str(path)) == {"messages": messages, "input": messages}


@pytest.mark.parametrize(("body", "problem"), [
    (_DEEP, "nested too deeply"),
    ('[{"role": "user", "content": NaN}]', "not a finite number (JSON has no NaN or infinity)"),
    ('[{"role": "user", "content": "\\udc00"}]', "holds a lone surrogate, which is not UTF-8 text"),
])
def test_a_messages_file_the_call_could_not_send_is_one_line_before_the_program_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, problem: str) -> None:
    """Through ``autotrace replay``: exit 2, one stderr line, the program not run (before: a traceback
    for the first; the others ran the program, whose replayed call failed in the SDK)."""
    now = time.time_ns()
    store = LocalStore(tmp_path / "t.db")
    store.write([{"trace_id": "ab" * 16, "id": "3" * 16, "parent_id": None, "name": "answer", "type": "generation",
                  "tenant": "acme", "start_ns": now, "end_ns": now + 1, "level": "DEFAULT", "model": "m",
                  "usage": None, "cost": None, "duration_ms": 1.0}])
    store.close()
    messages = tmp_path / "m.json"
    messages.write_text(body, encoding="utf-8")
    marker = tmp_path / "ran"
    code = cli.main(["--db", str(tmp_path / "t.db"), "replay", "abab", "--at", "3333", "--messages-file",
                     str(messages), "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')"])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err == f"autotrace replay: --messages-file {messages}: {problem}\n"
    assert not marker.exists()
