"""``show``'s header names the trace's own attributes: name, user, session and tags."""

from __future__ import annotations

import pytest

import autotrace
from autotrace import cli
from tests.helpers import Traced


def _show(traced: Traced, capsys: pytest.CaptureFixture[str], trace_id: str) -> str:
    traced.records()
    assert cli.main(["--db", str(traced.path), "show", trace_id, "--no-io"]) == 0
    return capsys.readouterr().out.splitlines()[0]


def test_header_names_every_trace_attribute(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    with autotrace.tenant("acme"), autotrace.trace_attributes(name="support-turn", user_id="u-42",
                                                              session_id="chat-7", tags=["beta", "eu"]):
        with autotrace.start_chain("root") as root:
            trace_id = root.trace_id
    assert _show(traced, capsys, trace_id) == (
        f"trace {trace_id}  tenant=acme  name=support-turn  user=u-42  session=chat-7  tags=beta,eu")


def test_header_takes_attributes_set_inside_the_trace(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    """Attributes given only to a later observation (set mid-turn, or by a downstream service) still
    name the trace; a value is shortened and control characters are escaped."""
    with autotrace.tenant("acme"), autotrace.start_chain("root") as root:
        trace_id = root.trace_id
        with autotrace.trace_attributes(session_id="s\x1b[31m" + "x" * 80):
            with autotrace.start_tool("lookup"):
                pass
    header = _show(traced, capsys, trace_id)
    assert header == f"trace {trace_id}  tenant=acme  session=s\\x1b[31m{'x' * 30}…"


def test_header_without_attributes_is_unchanged(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    with autotrace.tenant("acme"), autotrace.start_chain("root") as root:
        trace_id = root.trace_id
    assert _show(traced, capsys, trace_id) == f"trace {trace_id}  tenant=acme"
