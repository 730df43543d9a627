"""Replay edge cases: tenants, recorded errors, generators, and the replay/compare commands'
handling of stale replays and missing stores (the local store, the real CLI in a subprocess)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pytest

import autotrace
from autotrace.replay import RecordedError, ReplayStop, replay
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, autotrace_cli, isolated_env, shape

CALLS: Counter[str] = Counter()
SECRET = {"customer": "acme-c1", "note": "acme-internal"}


@autotrace.traced_tool
def lookup_customer(cid: str) -> dict[str, str]:
    CALLS["lookup_customer"] += 1
    return dict(SECRET, customer=cid)


def _pipeline(tenant: str, cid: str, switch_to: str | None = None) -> dict[str, str]:
    """A turn for ``tenant``; ``switch_to``: the tool is called in another tenant's scope."""
    with autotrace.tenant(tenant), autotrace.start_chain("turn"):
        if switch_to is None:
            data = lookup_customer(cid)
        else:
            with autotrace.tenant(switch_to):
                data = lookup_customer(cid)
        with autotrace.start_generation("answer", model="m") as gen:
            gen.set_output(f"answer for {data['customer']}")
        return data


def _recorded(traced: Traced, entry: Any, *args: Any) -> tuple[list[dict[str, Any]], str]:
    """Run ``entry`` once; its trace and the id of its ``answer`` generation."""
    entry(*args)
    store = autotrace.local_store()
    (summary,) = store.traces() if autotrace.flush(5) else []
    records = traced.trace(summary["trace_id"])
    return records, next(r["id"] for r in records if r["name"] == "answer")


def _other_trace(traced: Traced, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the one trace besides the recorded one."""
    assert autotrace.flush(5)
    (other,) = [t for t in autotrace.local_store().traces() if t["trace_id"] != records[0]["trace_id"]]
    return traced.trace(other["trace_id"])


_STOPPED = "replay stopped: the run no longer matches the recording"


def test_a_replay_never_hands_recorded_data_to_another_tenant(traced: Traced) -> None:
    records, at = _recorded(traced, _pipeline, "acme", "acme-c1")
    assert {r["tenant"] for r in records} == {"acme"}
    CALLS.clear()
    with pytest.raises(ReplayStop, match="another tenant than the recording"):
        replay(records, at, _pipeline, "globex", "globex-c9")
    assert CALLS == {}  # the frozen tool neither ran nor returned acme's output
    stored = _other_trace(traced, records)
    assert shape(stored) == [("chain", "turn", [])]  # stopped at its first call: nothing of acme's inside
    assert [(r["tenant"], r["level"], r["status_message"], r["replay_of"]) for r in stored] == [
        ("globex", "ERROR", _STOPPED, None)]


def test_a_call_made_in_another_tenants_scope_is_not_frozen(traced: Traced) -> None:
    records, at = _recorded(traced, _pipeline, "acme", "acme-c1")
    CALLS.clear()
    with pytest.raises(ReplayStop, match="another tenant than the recording"):
        replay(records, at, _pipeline, "acme", "globex-c9", switch_to="globex")
    assert CALLS == {}  # the code running for globex got nothing of acme's
    assert autotrace.flush(5)
    stored = [traced.trace(t["trace_id"]) for t in autotrace.local_store().traces()
              if t["trace_id"] != records[0]["trace_id"]]  # globex's block: a trace of its own
    assert sorted([(r["name"], r["tenant"], r["level"], r["output"], r["parent_id"]) for r in trace]
                  for trace in stored) == [[("lookup_customer", "globex", "ERROR", None, None)],
                                           [("turn", "acme", "WARNING", None, None)]]


def test_a_replay_of_the_same_tenant_still_freezes(traced: Traced) -> None:
    records, at = _recorded(traced, _pipeline, "acme", "acme-c1")
    CALLS.clear()
    result = replay(records, at, _pipeline, "acme", "acme-c2")
    assert result.result == {"customer": "acme-c1", "note": "acme-internal"} and CALLS == {}
    assert {r["tenant"] for r in traced.trace(result.trace_id)} == {"acme"}


class CardDeclined(Exception):
    pass


@autotrace.traced_tool
def charge(order: str, kind: str) -> str:
    CALLS["charge"] += 1
    raise (RuntimeError if kind == "builtin" else CardDeclined)("card declined")


@autotrace.traced_tool
async def refund(order: str) -> str:
    CALLS["refund"] += 1
    raise ValueError(f"no payment for {order}")


def _paying(kind: str) -> str:
    with autotrace.start_chain("turn"):
        try:
            path = f"charged: {charge('o-1', kind)!r}"
        except (RuntimeError, CardDeclined) as error:
            path = f"error handled: {error}"
        try:
            path += f", refunded: {asyncio.run(refund('o-1'))!r}"
        except ValueError as error:
            path += f", refund failed: {error}"
        with autotrace.start_generation("answer", model="m") as gen:
            gen.set_output(path)
        return path


def test_a_frozen_call_whose_recording_raised_raises_again(traced: Traced) -> None:
    records, at = _recorded(traced, _paying, "builtin")
    CALLS.clear()
    result = replay(records, at, _paying, "builtin")
    assert result.result == "error handled: card declined, refund failed: no payment for o-1"  # the recorded path
    assert CALLS == {}
    replayed = traced.trace(result.trace_id)
    assert shape(replayed) == [("chain", "turn", [("tool", "charge", []), ("tool", "refund", []),
                                                  ("generation", "answer", [])])]
    assert [(r["name"], r["level"], r["status_message"], r["metadata"].get("replay"), r["output"])
            for r in replayed if r["type"] == "tool"] == [
        ("charge", "ERROR", "RuntimeError: card declined", "frozen", None),
        ("refund", "ERROR", "ValueError: no payment for o-1", "frozen", None)]


def test_a_recorded_error_of_a_class_of_its_own_raises_recorded_error(traced: Traced) -> None:
    records, at = _recorded(traced, _paying, "custom")
    CALLS.clear()
    with pytest.raises(RecordedError) as raised:  # CardDeclined cannot be rebuilt from the recording
        replay(records, at, _paying, "custom")
    assert raised.value.status_message == "CardDeclined: card declined" and CALLS == {}


def _asking(client: openai.OpenAI) -> str:
    """A turn whose model call may fail; the program takes another path on each SDK error."""
    with autotrace.start_chain("turn"):
        try:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            path = f"answered: {reply.choices[0].message.content}"
        except openai.RateLimitError as error:
            path = f"rate limited ({error.status_code}): {error.message}"
        except openai.APIConnectionError as error:
            path = f"unreachable ({type(error).__name__})"
        with autotrace.start_generation("answer", model="m") as gen:
            gen.set_output(path)
        return path


@pytest.mark.integrations("openai")
def test_a_frozen_openai_call_whose_recording_raised_raises_the_sdks_error_again(traced: Traced) -> None:
    with FakeOpenAI() as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        fake.script(error=(429, "slow down"))
        records, at = _recorded(traced, _asking, client)
        recorded_path = "rate limited (429): Error code: 429 - slow down"
        assert records[-1]["output"] == recorded_path
        requests = len(fake.requests)
        result = replay(records, at, _asking, client)
        assert result.result == recorded_path  # the program took the recorded path, without a request
        assert len(fake.requests) == requests
    (chat,) = [r for r in traced.trace(result.trace_id) if r["type"] == "generation" and r["name"] != "answer"]
    (recorded,) = [r for r in records if r["type"] == "generation" and r["name"] != "answer"]
    assert (chat["level"], chat["status_message"], chat["metadata"].get("replay")) == (
        "ERROR", recorded["status_message"], "frozen")


@pytest.mark.integrations("openai")
def test_a_frozen_openai_call_that_could_not_connect_raises_a_connection_error(traced: Traced) -> None:
    with FakeOpenAI() as fake:
        base_url = fake.base_url
    client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)  # the server is gone
    records, at = _recorded(traced, _asking, client)
    assert records[-1]["output"] == "unreachable (APIConnectionError)"
    assert replay(records, at, _asking, client).result == "unreachable (APIConnectionError)"


@autotrace.traced_tool
def send_emails(n: int):
    for i in range(n):
        CALLS["send_emails"] += 1
        yield f"sent {i}. "


@autotrace.observe(as_type="retriever", name="rows")
async def stream_rows(n: int):
    for i in range(n):
        CALLS["stream_rows"] += 1
        yield {"row": i}


def _streaming(n: int) -> tuple[list[Any], list[Any]]:
    async def collect() -> list[Any]:
        return [row async for row in stream_rows(n)]

    with autotrace.start_chain("turn"):
        sent, rows = list(send_emails(n)), asyncio.run(collect())
        with autotrace.start_generation("answer", model="m") as gen:
            gen.set_output("ok")
        return sent, rows


def test_frozen_generators_yield_the_recorded_items_without_running(traced: Traced) -> None:
    records, at = _recorded(traced, _streaming, 2)
    CALLS.clear()
    result = replay(records, at, _streaming, 2)
    assert CALLS == {}
    # recorded text is joined, so it comes back as one item; other items as they were
    assert result.result == (["sent 0. sent 1. "], [{"row": 0}, {"row": 1}])
    replayed = traced.trace(result.trace_id)
    assert shape(replayed) == [("chain", "turn", [("tool", "send_emails", []), ("retriever", "rows", []),
                                                  ("generation", "answer", [])])]
    assert [(r["name"], r["output"], r["metadata"].get("replay")) for r in replayed] == [
        ("turn", None, None), ("send_emails", "sent 0. sent 1. ", "frozen"),
        ("rows", [{"row": 0}, {"row": 1}], "frozen"), ("answer", "ok", None)]


@autotrace.observe(name="pages", capture_output=False)
def unrecorded_pages():
    CALLS["pages"] += 1
    yield 1


@autotrace.observe(name="pages")
def failing_pages():
    CALLS["pages"] += 1
    yield 1
    raise RuntimeError("page 2 missing")


@pytest.mark.parametrize("pages", [unrecorded_pages, failing_pages], ids=["not-captured", "raised"])
def test_a_frozen_generator_without_its_items_in_the_recording_stops(traced: Traced, pages: Any) -> None:
    def paging() -> list[Any]:
        with autotrace.start_chain("turn"):
            items = []
            try:
                items.extend(pages())
            except RuntimeError:
                pass
            with autotrace.start_generation("answer", model="m"):
                return items

    records, at = _recorded(traced, paging)
    CALLS.clear()
    with pytest.raises(ReplayStop, match="recording of 'pages' does not hold the items it yielded"):
        replay(records, at, paging)
    assert CALLS == {}
    stored = _other_trace(traced, records)
    assert shape(stored) == [("chain", "turn", [("span", "pages", [])])]
    assert [(r["level"], r["status_message"]) for r in stored] == [
        ("WARNING", "ReplayStop: replay stopped: the recording of 'pages' does not hold the items it yielded"),
        ("ERROR", "replay stopped: the recording does not hold the yielded items")]


APP = textwrap.dedent("""
    import sys, autotrace
    @autotrace.traced_tool
    def lookup(x):
        return {"x": x}
    with autotrace.tenant("acme"), autotrace.start_chain("turn"):
        d = lookup("a")
        with autotrace.start_generation("answer", model="m") as g:
            g.set_output(f"answer {d}")
""")


def _env(db: Path) -> dict[str, str]:
    return isolated_env(db.parent, AUTOTRACE_LOCAL_STORE_PATH=str(db), AUTOTRACE_EXPORT_INTERVAL="0.05")


def test_replay_cli_never_reports_an_earlier_replay_as_this_runs(tmp_path: Path) -> None:
    db, app = tmp_path / "cli.db", tmp_path / "app.py"
    app.write_text(APP)
    env = _env(db)
    assert autotrace_cli(env, tmp_path, "run", "--", sys.executable, str(app)).returncode == 0
    from autotrace.export.local_store import LocalStore

    (trace,) = LocalStore(db).traces()
    at = next(r["id"] for r in LocalStore(db).trace(trace["trace_id"]) if r["name"] == "answer")
    first = autotrace_cli(env, tmp_path, "replay", trace["trace_id"], "--at", at, "--", sys.executable, str(app))
    assert first.returncode == 0 and f"of {trace['trace_id']}" in first.stdout, first.stderr
    second = autotrace_cli(env, tmp_path, "replay", trace["trace_id"], "--at", at, "--", sys.executable, "-c",
                  "import sys; sys.exit(3)")
    assert (second.returncode, second.stdout) == (3, "")
    assert second.stderr == (f"autotrace replay: the program (exit code 3) recorded no replay trace of "
                             f"{trace['trace_id']}\n")


@pytest.mark.parametrize("argv", [["compare", "--prompt", "p", "1", "2"], ["replay", "abc", "--at", "1", "--", "true"]])
def test_compare_and_replay_report_a_missing_store_without_creating_it(tmp_path: Path, argv: list[str]) -> None:
    db = tmp_path / "no" / "such" / "traces.db"
    result = autotrace_cli(_env(db), tmp_path, *argv)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"autotrace: no local store at {db} (run something traced first, or pass --db)\n"
    assert not (tmp_path / "no").exists()
