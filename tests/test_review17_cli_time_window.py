"""Review 17: ``traces`` and ``query`` could not be limited to a time: a user looking for the run that gave a
wrong answer at 14:05 had to page through the newest traces, and ``query 'start_ns>2026-12-05T14:05'``
matched nothing without a word (a time is no number). ``--since`` and ``--until`` take an ISO 8601 time
(an offset or ``Z``; without one, the local time of the machine, ``TZ``) or a span before now (``15m``).
A real traced program and real ``autotrace`` processes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from tests.helpers import autotrace_cli, isolated_env

PROGRAM = textwrap.dedent("""
    import time
    import autotrace
    autotrace.install(unknown_tenant="local")
    for name in ("first", "second"):
        with autotrace.start_chain(name):
            with autotrace.start_tool("lookup"):
                pass
        time.sleep(0.2)
    autotrace.shutdown()
""")


def _autotrace(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return autotrace_cli(env, None, *argv, timeout=60)


def _listed(env: dict[str, str], *argv: str) -> list[Any]:
    done = _autotrace(env, *argv, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _at(ns: int, offset: dt.timedelta | None) -> str:
    """``ns`` as ISO 8601 in the zone ``offset`` (None: without an offset, as local time in New York)."""
    moment = dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)
    if offset is None:
        return (moment - dt.timedelta(hours=5)).replace(tzinfo=None).isoformat()  # EST in December
    return moment.astimezone(dt.timezone(offset)).isoformat()


def test_traces_and_query_take_a_time_window_in_any_zone(tmp_path: Path) -> None:
    env = isolated_env(tmp_path, TZ="America/New_York")
    subprocess.run([sys.executable, "-c", PROGRAM], env=env, timeout=60, check=True)
    second, first = _listed(env, "traces")
    assert (first["name"], second["name"]) == ("first", "second")
    between = (first["start_ns"] + first["duration_ms"] * 1e6 + second["start_ns"]) // 2
    assert second["start_ns"] - between > 50e6  # far from the microseconds an ISO time holds
    india, utc, new_york = (_at(int(between), dt.timedelta(hours=5, minutes=30)), _at(int(between), dt.timedelta(0)),
                            _at(int(between), None))
    assert india.endswith("+05:30") and utc.endswith("+00:00") and "+" not in new_york[10:]
    assert [s["name"] for s in _listed(env, "traces", "--since", india)] == ["second"]
    assert [s["name"] for s in _listed(env, "traces", "--until", utc.replace("+00:00", "Z"))] == ["first"]
    assert [s["name"] for s in _listed(env, "traces", "--since", "1h")] == ["second", "first"]
    assert [s["name"] for s in _listed(env, "traces", "--until", "1h")] == []
    assert [(r["name"], r["trace_id"]) for r in _listed(env, "query", "type=tool", "--since", new_york)] == [
        ("lookup", second["trace_id"])]  # a time without an offset: the machine's local time (TZ)
    assert [r["trace_id"] for r in _listed(env, "query", "has name", "--until", new_york)] == [first["trace_id"]] * 2
    done = _autotrace(env, "query", "type=tool", "--since", "yesterday", "--json")
    assert (done.returncode, json.loads(done.stdout)["error"]["kind"]) == (2, "usage")
    assert "argument --since: expected an ISO 8601 time" in done.stderr
