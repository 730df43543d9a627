"""The paired benchmark's plumbing: it finds what an instrumentation patched, switches it off and
on, and times both states alike (checked on autotrace's own OpenAI patch with the real SDK and a
loopback server, and on a small package of its own)."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

import autotrace
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _harness
import _paired

MESSAGES = [{"role": "user", "content": "where is my order"}]


def test_autotrace_openai_patch_is_found_and_switched(tmp_path: Path, client: openai.OpenAI,
                                                      fake: FakeOpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)  # loads the modules first
    importlib.import_module("openai.lib.streaming.responses._responses")  # (whichever tests ran before)
    before = _paired.snapshot("openai")
    path = tmp_path / "traces.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=("openai",), export_interval=0.05)
    found = _paired.patches(before, "openai")
    assert sorted(f"{owner.__name__}.{name}" for owner, name, _, _ in found) == [
        "AsyncAPIClient.request", "AsyncChatCompletionStream.__stream__", "AsyncChatCompletionStream.close",
        "AsyncResponseContextManager.__aexit__", "AsyncResponseStream.__stream__", "AsyncResponseStream.close",
        "AsyncStream.__aiter__", "AsyncStream.__anext__", "AsyncStream.close", "ChatCompletionStream.__stream__",
        "ChatCompletionStream.close", "ResponseContextManager.__exit__", "ResponseStream.__stream__",
        "ResponseStream.close", "Stream.__iter__", "Stream.__next__", "Stream.close", "SyncAPIClient.request"]

    _paired.switch(found, False)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert Traced(path).records() == []
    _paired.switch(found, True)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert [(r["type"], r["name"]) for r in Traced(path).records()] == [("generation", "openai.chat")]


@pytest.fixture
def package() -> Iterator[types.ModuleType]:
    """``pairedpkg`` and ``pairedpkg.sub``: a base class, a subclass and a module function."""
    root, sub = types.ModuleType("pairedpkg"), types.ModuleType("pairedpkg.sub")

    class Base:
        def call(self) -> str:
            return "base"

    class Child(Base):
        pass

    Base.__module__ = Child.__module__ = "pairedpkg.sub"
    sub.Base, sub.Child, sub.limit = Base, Child, 10  # type: ignore[attr-defined]
    sub.helper = lambda: "helper"  # type: ignore[attr-defined]
    sys.modules.update({"pairedpkg": root, "pairedpkg.sub": sub})
    yield sub
    del sys.modules["pairedpkg"], sys.modules["pairedpkg.sub"]


def test_replaced_and_added_callables_are_patches(package: types.ModuleType) -> None:
    before = _paired.snapshot("pairedpkg")
    original_helper = package.helper
    package.helper = lambda: "patched helper"
    package.Child.call = lambda self: "patched child"  # added on the subclass: absent before
    package.limit = 20  # not callable: a setting, not a patch
    package.added_later = lambda: None  # a new module-level name: not a patch of what was there
    found = _paired.patches(before, "pairedpkg")
    assert sorted(name for _, name, _, _ in found) == ["call", "helper"]

    _paired.switch(found, False)
    assert (package.Child().call(), package.helper) == ("base", original_helper)
    assert "call" not in vars(package.Child)
    _paired.switch(found, True)
    assert (package.Child().call(), package.helper()) == ("patched child", "patched helper")


def test_rounds_time_both_states_and_leave_the_patches_on(package: types.ModuleType) -> None:
    before = _paired.snapshot("pairedpkg")
    package.Child.call = lambda self: "patched"
    found = _paired.patches(before, "pairedpkg")
    seen: list[str] = []

    def call() -> None:
        seen.append(package.Child().call())

    result = _paired.added(found, call, rounds=4, calls=3, warmup=5)
    assert set(result) == {"added", "q1", "q3", "off"}
    assert seen[:7] == ["patched"] * 7  # the warm-up (and its two untimed calls) runs patched
    blocks = [seen[start:start + 5] for start in range(7, len(seen), 5)]  # two untimed calls, three timed
    assert len(blocks) == 8 and all(len(set(block)) == 1 for block in blocks)
    assert sorted(block[0] for block in blocks) == ["base"] * 4 + ["patched"] * 4
    for first, second in zip(blocks[::2], blocks[1::2], strict=True):  # each round: one block of each
        assert {first[0], second[0]} == {"base", "patched"}
    assert package.Child().call() == "patched"


def test_coroutine_functions_are_timed_on_their_own_loop(package: types.ModuleType) -> None:
    """An async column runs its blocks on an event loop of the measurement's own."""
    before = _paired.snapshot("pairedpkg")
    package.Child.call = lambda self: "patched"
    found = _paired.patches(before, "pairedpkg")
    seen: list[str] = []

    async def call() -> None:
        seen.append(package.Child().call())

    result = _paired.added(found, call, rounds=2, calls=2, warmup=1)
    assert len(seen) == 3 + 2 * 2 * 4 and seen.count("base") == 2 * 4
    assert set(result) == {"added", "q1", "q3", "off"}


def test_contenders_side_by_side_are_timed_each_alone(package: types.ModuleType) -> None:
    """Two contenders in one interpreter, both patching the same method: each finds its patches
    with the other's off, and each block runs with one contender's patches only (or none)."""
    original_helper = package.helper
    before = _paired.snapshot("pairedpkg")
    package.Base.call = lambda self: "first"
    package.helper = lambda: "first's helper"
    first = _paired.patches(before, "pairedpkg")
    _paired.switch(first, False)
    before = _paired.snapshot("pairedpkg")
    package.Base.call = lambda self: "second"
    second = _paired.patches(before, "pairedpkg")
    _paired.switch(second, False)
    assert package.Base().call() == "base"
    seen: list[tuple[str, bool]] = []

    def call() -> None:
        seen.append((package.Child().call(), package.helper is original_helper))

    result = _paired.compare({"first": first, "second": second}, call, rounds=5, calls=3, warmup=4)
    assert set(result) == {"first", "second"}
    assert all(set(cell) == {"added", "q1", "q3", "off"} for cell in result.values())
    assert seen[:12] == [("first", False)] * 6 + [("second", True)] * 6  # each warmed up alone
    blocks = [seen[start:start + 5] for start in range(12, len(seen), 5)]
    assert len(blocks) == 15 and all(len(set(block)) == 1 for block in blocks)
    states = [block[0] for block in blocks]
    for round_start in range(0, 15, 3):  # each round: one block of each state, alone
        assert sorted(states[round_start:round_start + 3]) == [("base", True), ("first", False), ("second", True)]
    assert (package.Base().call(), package.helper) == ("base", original_helper)  # all off afterwards


def test_the_paired_table_gives_ours_over_the_fastest_other_only_when_both_ran() -> None:
    def cell(added: float) -> dict[str, float]:
        return {"added": added, "q1": added - 1, "q3": added + 1, "off": 1000.0}

    rows = [("autotrace", {"sync": cell(60.0)}), ("contrib", {"sync": cell(150.0)}), ("slow", {"sync": cell(300.0)})]
    table = _harness.paired_table("t", rows, ["sync"])
    assert "sync 0.40, 0.40 vs contrib" in table
    alone = _harness.paired_table("t", rows[1:], ["sync"])
    assert "contrib" in alone and "over the fastest other" not in alone


def test_block_reaches_every_child_interpreter_and_the_title(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    asked: list[tuple[str, ...]] = []

    def child(script: str, contender: str, *args: str, timeout: float = 600) -> dict[str, object]:
        asked.append((contender, *args))
        cell = {"added": 50.0, "q1": 40.0, "q3": 60.0, "off": 1000.0}
        if "--together" in args:
            return {name: {"sync": cell} for name in contender.split(",")}
        return {"sync": cell}

    monkeypatch.setattr(_harness, "run_contender", child)
    _harness._paired_main("bench.py", ["autotrace", "contrib"], ["sync"], "t", repeat=2, rounds=7, together=True,
                          block=300)
    assert asked == [("autotrace,contrib", "--paired", "--together", "--rounds", "7", "--block", "300")] * 2
    assert "300 calls per block, 7 rounds per column" in capsys.readouterr().out
    asked.clear()
    _harness._paired_main("bench.py", ["autotrace"], ["sync"], "t", repeat=1, rounds=7)
    assert asked == [("autotrace", "--paired", "--rounds", "7")]  # the benchmark's own blocks
