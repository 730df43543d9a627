"""Replay from a failing step and prompt-version comparison, on a real multi-step pipeline
(manual API, decorated functions and the real OpenAI SDK against a loopback server)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import autotrace
from autotrace.compare import compare_versions, mann_whitney_p, proportion_p
from autotrace.interception import ReplayStop
from autotrace.replay import first_difference, parse_overrides, replay
from autotrace.testing.fake_openai import FakeOpenAI
from tests import replay_app
from tests.helpers import Traced, isolated_env, shape

pytestmark = pytest.mark.integrations("openai")

@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(responder=replay_app.brain) as server:
        yield server


def _record(client: openai.OpenAI, traced: Traced) -> list[dict[str, Any]]:
    replay_app.CALLS.clear()
    replay_app.pipeline(client, "where is my order?")
    (summary,) = autotrace.local_store().traces() if autotrace.flush(5) else []
    return traced.trace(summary["trace_id"])


TREE = [("chain", "support-turn", [
    ("generation", "openai.chat", []), ("retriever", "search", []), ("tool", "lookup_order", []),
    ("generation", "answer-step", [("evaluator", "mentions_shipping", [])]),  # its OpenAI call is deduplicated
])]


def test_replay_freezes_before_runs_the_target_live_with_overrides(traced: Traced, fake: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    original = _record(client, traced)
    assert shape(original) == TREE
    scores = autotrace.local_store().scores(original[0]["trace_id"])
    assert [(s["name"], s["value"]) for s in scores] == [("mentions_shipping", 1.0)]
    answer_step = next(r for r in original if r["name"] == "answer-step")
    assert scores[0]["observation_id"] == answer_step["id"]
    target = answer_step  # the generation step whose model call runs live with the overrides

    replay_app.CALLS.clear()
    requests_before = len(fake.requests)
    result = replay(original, target["id"], replay_app.pipeline, client, "where is my order?",
                    overrides=parse_overrides(["model=gpt-4o", "temperature=0.9"]))
    assert result.reached and result.result == "[gpt-4o t=0.9] Your order ships today."
    assert replay_app.CALLS == {}  # search and lookup_order returned their recorded outputs
    sent = fake.requests[requests_before:]
    assert len(sent) == 1 and sent[0]["body"]["model"] == "gpt-4o" and sent[0]["body"]["temperature"] == 0.9

    replayed = traced.trace(result.trace_id)
    assert shape(replayed) == TREE
    assert {r["replay_of"] for r in replayed if r["type"] != "evaluator"} == {original[0]["trace_id"]}
    frozen = {r["name"] for r in replayed if (r.get("metadata") or {}).get("replay") == "frozen"}
    assert frozen == {"openai.chat", "search", "lookup_order"}  # the first model call, the retrieval, the tool
    summary = next(t for t in autotrace.local_store().traces() if t["trace_id"] == result.trace_id)
    assert summary["replay_of"] == original[0]["trace_id"]
    difference = first_difference(original, replayed)
    assert difference is not None and difference.startswith("1.4: generation 'answer-step' output")


def test_a_mismatch_stops_the_replay(traced: Traced, fake: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
    original = _record(client, traced)
    target = next(r for r in original if r["name"] == "answer-step")

    def different_pipeline(client: openai.OpenAI) -> None:
        with autotrace.start_chain("support-turn"):
            replay_app.lookup_order("o-1")  # the recording has a model call first, then search

    with pytest.raises(ReplayStop, match=re.escape("call #1 under support-turn is tool 'lookup_order', the "
                                                   "recording has generation 'openai.chat' there")):
        replay(original, target["id"], different_pipeline, client)


def test_replay_cli_prints_both_trees_and_the_first_difference(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    env = isolated_env(tmp_path)
    env.update({"AUTOTRACE_LOCAL_STORE_PATH": str(db), "AUTOTRACE_EXPORT_INTERVAL": "0.05",
                "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    app = [sys.executable, "-m", "tests.replay_app"]
    first = subprocess.run([sys.executable, "-m", "autotrace", "run", "--", *app], env=env, capture_output=True,
                           text=True, timeout=120, check=True, cwd=tmp_path)
    assert json.loads(first.stdout.splitlines()[-1])["calls"] == {"search": 1, "lookup_order": 1}
    from autotrace.export.local_store import LocalStore

    store = LocalStore(db)
    (trace,) = store.traces()
    records = store.trace(trace["trace_id"])
    target = next(r for r in records if r["name"] == "answer-step")
    messages = tmp_path / "messages.json"
    messages.write_text(json.dumps([{"role": "user", "content": "where is my order, briefly?"}]))
    result = subprocess.run(
        [sys.executable, "-m", "autotrace", "--db", str(db), "replay", trace["trace_id"][:12], "--at", target["id"],
         "--set", "model=gpt-4.1", "--messages-file", str(messages), "--", *app],
        env=env, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    report = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    assert report["calls"] == {} and report["answer"].startswith("[gpt-4.1 ")
    assert "ORIGINAL" in out and "REPLAY" in out and f"of {trace['trace_id']}" in out
    assert "first difference: 1.4: generation 'answer-step' output" in out


def test_prompt_versions_compared_with_significance(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "c.db", integrations=(), export_interval=0.05)
    for version, tokens, quality, errors in ((1, 100, 0.9, 0), (2, 180, 0.4, 6)):
        for i in range(30):
            failing = i < errors
            try:
                with autotrace.start_generation("answer", prompt={"name": "answer", "version": version}) as gen:
                    gen.update(usage={"input": tokens - 20 + i % 5, "output": 20, "total": tokens + i % 5})
                    gen.score("quality", quality + (i % 3) * 0.01)
                    if failing:
                        raise RuntimeError("model refused")
            except RuntimeError:
                pass
    assert autotrace.flush(10)
    store = autotrace.local_store()
    report = compare_versions(store.observations(), store.scores(), "answer", 1, 2)
    assert report["count_a"] == report["count_b"] == 30
    # latency is whatever this machine did, so it may or may not differ; the rest is deterministic
    assert set(report["regressions"]) - {"latency_ms"} == {"tokens", "error_rate", "score:quality"}
    tokens = next(m for m in report["metrics"] if m["metric"] == "tokens")
    assert tokens["a_p50"] == 102 and tokens["b_p50"] == 182 and tokens["p_value"] < 1e-6
    from autotrace import cli

    assert cli.main(["--db", str(tmp_path / "c.db"), "compare", "--prompt", "answer", "1", "2",
                     "--fail-on-regression"]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    assert compare_versions(store.observations(), store.scores(), "answer", 1, 1)["regressions"] == []


def test_statistics() -> None:
    assert mann_whitney_p([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert mann_whitney_p(list(range(20)), list(range(100, 120))) < 1e-6
    assert mann_whitney_p([1], [2, 3]) is None
    assert proportion_p(0, 50, 10, 50) < 0.01 and proportion_p(5, 50, 5, 50) == pytest.approx(1.0)
