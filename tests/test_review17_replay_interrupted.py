"""A replay never hands the program the output of a recorded call that was interrupted (cancelled by
a timeout) as if it had returned it: the real CLI replaying a real traced asyncio agent whose
retrieval timed out when it was recorded."""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from pathlib import Path

import pytest

import autotrace
from autotrace.export.local_store import LocalStore
from autotrace.replay import areplay
from tests.helpers import Traced, autotrace_cli, isolated_env, shape

pytestmark = pytest.mark.integrations("openai")

APP = textwrap.dedent("""
    import asyncio, json
    import openai, autotrace
    from autotrace.testing.fake_openai import FakeOpenAI, Script

    @autotrace.observe(as_type="retriever", name="search")
    async def search(q):
        await asyncio.sleep(5)  # always slower than the agent waits: it falls back
        return [{"id": "kb-1"}]

    async def agent(client):
        with autotrace.start_chain("agent"):
            try:
                docs, path = await asyncio.wait_for(search("where?"), 0.05), "docs"
            except asyncio.TimeoutError:
                docs, path = [], "fallback"
            with autotrace.start_generation("answer") as g:
                reply = await client.chat.completions.create(model="gpt-4o-mini", messages=[
                    {"role": "user", "content": f"answer from {docs!r}"}])
                g.set_output(reply.choices[0].message.content)
            return path, docs

    with FakeOpenAI(responder=lambda body: Script(reply=body["messages"][0]["content"], usage=(5, 1))) as fake:
        print(json.dumps(asyncio.run(agent(openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)))))
""")


def test_a_frozen_call_whose_recording_was_cancelled_stops_the_replay(tmp_path: Path) -> None:
    db, app = tmp_path / "traces.db", tmp_path / "app.py"
    app.write_text(APP)
    env = isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(db), AUTOTRACE_EXPORT_INTERVAL="0.05")
    recorded = autotrace_cli(env, tmp_path, "run", "--", sys.executable, str(app))
    assert json.loads(recorded.stdout) == ["fallback", []], recorded.stderr
    (trace,) = LocalStore(db).traces()
    original = LocalStore(db).trace(trace["trace_id"])
    assert [(r["name"], r["level"], r["status_message"], r["output"]) for r in original if r["name"] == "search"] == [
        ("search", "WARNING", "CancelledError", None)]
    at = next(r["id"] for r in original if r["name"] == "answer")

    result = autotrace_cli(env, tmp_path, "replay", trace["trace_id"], "--at", at, "--set", "model=gpt-4o", "--",
                  sys.executable, str(app))
    # before: the frozen search "returned" None, so the program took the path it never took when
    # recorded (["docs", null]) and the live generation was asked about None instead of []
    assert "[\"docs\", null]" not in result.stdout
    assert result.returncode == 1
    message = ("replay stopped: the recording of retriever 'search' was interrupted (CancelledError) before it "
               "returned: it has no outcome to give the program")
    assert f"autotrace.interception.ReplayStop: {message}" in result.stderr
    replayed = LocalStore(db).trace(LocalStore(db).first_replay(trace["trace_id"], 0) or "")
    assert shape(replayed) == [("chain", "agent", [("retriever", "search", [])])]
    assert [(r["name"], r["level"], r["status_message"]) for r in replayed] == [
        ("agent", "WARNING", f"ReplayStop: {message}"), ("search", "ERROR", message)]


CALLS: list[str] = []


@autotrace.observe(as_type="generation", name="draft")
async def draft(text: str) -> str:
    CALLS.append(text)
    await asyncio.sleep(float(len(CALLS) == 1) * 5)  # the recorded run's is cancelled by the timeout
    return f"draft of {text}"


async def _turn() -> str:
    with autotrace.start_chain("turn"):
        try:
            text = await asyncio.wait_for(draft("q"), 0.05)
        except TimeoutError:
            text = "timed out"
        with autotrace.start_generation("answer", model="m") as gen:
            gen.set_output(text)
        return text


def test_a_generation_whose_recording_was_cancelled_runs_live(traced: Traced) -> None:
    assert asyncio.run(_turn()) == "timed out"
    (summary,) = autotrace.local_store().traces() if autotrace.flush(5) else []
    records = traced.trace(summary["trace_id"])
    at = next(r["id"] for r in records if r["name"] == "answer")
    result = asyncio.run(areplay(records, at, _turn))
    assert (result.result, CALLS) == ("draft of q", ["q", "q"])  # before: None, the draft never run
    replayed = traced.trace(result.trace_id or "")
    assert [(r["name"], r["output"], (r.get("metadata") or {}).get("replay")) for r in replayed] == [
        ("turn", None, None), ("draft", "draft of q", None), ("answer", "draft of q", None)]
