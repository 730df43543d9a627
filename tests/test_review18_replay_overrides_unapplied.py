"""A replay whose chosen generation makes no model request the overrides can go with (a generation
of the program's own around another client, a framework's generation of another provider) ran as
recorded: ``replay`` says so (``overridden``), and ``autotrace replay`` fails instead of comparing
a run that tried nothing (the real CLI, a real traced program, a real OpenAI SDK on loopback)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import openai
import pytest

import autotrace
from autotrace.export.local_store import LocalStore
from autotrace.replay import replay
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, autotrace_cli, isolated_env

pytestmark = pytest.mark.integrations("openai")

ASK = [{"role": "user", "content": "where is my order?"}]


def _turn(client: openai.OpenAI | None) -> str:
    """The chosen generation: an OpenAI call made under the program's own generation, or (no client)
    the program's own generation around another client's call (here, a text)."""
    with autotrace.start_chain("turn"), autotrace.start_generation("answer", model="m") as gen:
        text = ("ships today" if client is None else
                client.chat.completions.create(model="gpt-4o-mini", messages=ASK).choices[0].message.content)
        gen.set_output(text)
    return text or ""


@pytest.mark.parametrize("made_by", ["openai", "another client"])
def test_replay_says_whether_its_overrides_were_sent(traced: Traced, made_by: str) -> None:
    with FakeOpenAI() as fake, openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as sdk:
        client = sdk if made_by == "openai" else None
        _turn(client)
        (summary,) = autotrace.local_store().traces() if autotrace.flush(5) else []
        original = traced.trace(summary["trace_id"])
        at = next(r["id"] for r in original if r["name"] == "answer")
        result = replay(original, at, _turn, client, overrides={"model": "gpt-4o"})
        plain = replay(original, at, _turn, client)
        sent = [request["body"]["model"] for request in fake.requests]
    assert result.reached and plain.reached
    assert (result.overridden, plain.overridden) == (made_by == "openai", False)
    assert sent == (["gpt-4o-mini", "gpt-4o", "gpt-4o-mini"] if made_by == "openai" else [])


APP = textwrap.dedent("""
    import autotrace

    with autotrace.start_chain("turn"):
        with autotrace.start_generation("answer", model="m") as g:  # another provider's client, say
            g.set_output("ships today")
""")


def test_the_replay_command_fails_when_the_overrides_went_with_no_request(tmp_path: Path) -> None:
    db, app = tmp_path / "traces.db", tmp_path / "app.py"
    app.write_text(APP)
    (tmp_path / "tmp").mkdir()
    env = isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(db), AUTOTRACE_EXPORT_INTERVAL="0.05",
                       TMPDIR=str(tmp_path / "tmp"))
    assert autotrace_cli(env, tmp_path, "run", "--", sys.executable, str(app)).returncode == 0
    (trace,) = LocalStore(db).traces()
    at = next(r["id"] for r in LocalStore(db).trace(trace["trace_id"]) if r["name"] == "answer")

    ignored = autotrace_cli(env, tmp_path, "replay", trace["trace_id"], "--at", at[:8], "--set", "model=m2", "--",
                            sys.executable, str(app))
    # before: exit 0 and "no difference", as if model m2 had answered as m did
    assert ignored.returncode == 1
    assert ignored.stderr == (f"autotrace replay: the chosen generation {at} ('answer') made no OpenAI request to "
                              f"send the overrides with: it ran without them\n")
    assert "\nno difference\n" in ignored.stdout

    plain = autotrace_cli(env, tmp_path, "replay", trace["trace_id"], "--at", at[:8], "--", sys.executable, str(app))
    assert (plain.returncode, plain.stderr) == (0, "")
    assert list((tmp_path / "tmp").iterdir()) == []  # the replay's files removed
