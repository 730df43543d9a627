"""Review 17: what ``traces`` says a trace spent. A trace whose model has no known price listed a cost of
``0.000000`` (``"cost": 0.0``), a false zero, where ``compare`` says unknown; and a replay's total
counted the usage and cost its frozen calls hold from the recording, which the replay never spent (and
``show`` did not tell a frozen call from one that ran). Real traced programs (the real OpenAI SDK over
HTTP to the loopback fake server) and real ``autotrace`` processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import autotrace_cli, isolated_env

pytestmark = pytest.mark.integrations("openai")

PROGRAM = textwrap.dedent("""
    import sys
    import openai
    import autotrace
    from autotrace.testing.fake_openai import FakeOpenAI

    autotrace.install(unknown_tenant="local")
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="x")

        @autotrace.observe(as_type="agent")
        def agent(question):
            for text in (question, "again " + question):
                reply = client.chat.completions.create(model=sys.argv[1], messages=[{"role": "user", "content": text}])
            return reply.choices[0].message.content

        agent("what is 2+2")
    autotrace.shutdown()
""")


def _autotrace(env: dict[str, str], *argv: str) -> str:
    done = autotrace_cli(env, None, *argv)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _traced(tmp_path: Path, model: str) -> tuple[dict[str, str], Path]:
    env = isolated_env(tmp_path)
    program = tmp_path / "app.py"
    program.write_text(PROGRAM)
    subprocess.run([sys.executable, str(program), model], env=env, timeout=120, check=True)
    return env, program


def _spent(summary: dict[str, Any]) -> tuple[Any, ...]:
    return summary["name"], summary["observations"], summary["tokens"], summary["cost"]


def test_an_unpriced_models_cost_is_listed_unknown_not_zero(tmp_path: Path) -> None:
    env, _ = _traced(tmp_path, "my-local-llama")
    (listed,) = json.loads(_autotrace(env, "traces", "--json"))
    generations = [r for r in json.loads(_autotrace(env, "show", listed["trace_id"], "--json"))
                   if r["type"] == "generation"]
    assert [g["cost"] for g in generations] == [None, None]  # no price: no cost recorded
    assert _spent(listed) == ("agent", 3, sum(g["usage"]["total"] for g in generations), None)  # was 0.0
    header, row = _autotrace(env, "traces").splitlines()
    assert row[header.index("COST"):header.index("COST") + 4] == "   -"  # was 0.000000, right-aligned as cost is


def test_a_replays_total_leaves_out_its_frozen_calls(tmp_path: Path) -> None:
    env, program = _traced(tmp_path, "gpt-4o-mini")
    (original,) = json.loads(_autotrace(env, "traces", "--json"))
    first, second = [r for r in json.loads(_autotrace(env, "show", original["trace_id"], "--json"))
                     if r["type"] == "generation"]
    assert _spent(original) == ("agent", 3, first["usage"]["total"] + second["usage"]["total"],
                                pytest.approx(first["cost"]["total"] + second["cost"]["total"]))
    _autotrace(env, "replay", original["trace_id"], "--at", second["id"], "--set", "model=gpt-4o", "--",
               sys.executable, str(program), "gpt-4o-mini")
    replay, _ = json.loads(_autotrace(env, "traces", "--json"))
    frozen, live = [r for r in json.loads(_autotrace(env, "show", replay["trace_id"], "--json"))
                    if r["type"] == "generation"]
    assert (frozen["metadata"]["replay"], frozen["usage"], frozen["cost"]) == ("frozen", first["usage"], first["cost"])
    assert (live["model"], "replay" in live["metadata"]) == ("gpt-4o", False)
    # only the call the replay ran: the frozen one's recorded usage and cost were counted too
    assert _spent(replay) == ("agent", 3, live["usage"]["total"], pytest.approx(live["cost"]["total"]))
    lines = [re.sub(r"  [0-9.]+ms|  \$[0-9.]+|  #\w+", "", line)  # durations vary
             for line in _autotrace(env, "show", replay["trace_id"], "--no-io").splitlines()[1:]]
    assert lines == ["└─ [AGENT] agent", f"   ├─ [GEN] openai.chat  {first['usage']['total']} tok  gpt-4o-mini  frozen",
                     f"   └─ [GEN] openai.chat  {live['usage']['total']} tok  gpt-4o"]
