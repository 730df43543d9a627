"""Review 21 (real langgraph): two calls of a cached ``@task`` with one key, the second still
running when the first ends. LangGraph's ``match_cached_writes`` then gives the running call the
first one's writes (``put_writes(cached=True)``) as another task is called, and it was recorded
twice: as a ``cache_hit`` node with the first call's output and as the run it really made."""

from __future__ import annotations

import threading

import pytest
from langgraph.cache.memory import InMemoryCache
from langgraph.func import entrypoint, task
from langgraph.types import CachePolicy

import autotrace
from tests.helpers import Traced, shape
from tests.test_langgraph_subagents_and_interrupts import _nothing_open

pytestmark = pytest.mark.integrations("langchain")

_release = threading.Event()
_second_running = threading.Event()


@task(cache_policy=CachePolicy(key_func=lambda n: "one key"))
def _slow(n: int) -> int:
    if n == 2:  # still running when the first call ends, until another task is called
        _second_running.set()
        assert _release.wait(10)
    elif n == 1:  # ends only once the second runs (else LangGraph may answer that one from the cache)
        assert _second_running.wait(10)
    return n * 10


@task
def _other(n: int) -> int:
    return n


@entrypoint(cache=InMemoryCache())
def _main(x: int) -> list[int]:
    first, second = _slow(1), _slow(2)
    done = first.result()
    other = _other(3)  # LangGraph matches the running second call's key to the first's cached writes
    _release.set()
    return [done, second.result(), other.result()]


def test_a_running_task_given_cached_writes_is_recorded_once(traced: Traced) -> None:
    _release.clear()
    _second_running.clear()
    assert _main.invoke(0) == [10, 20, 3]
    records = traced.records()
    assert shape(records) == [("agent", "LangGraph", [("chain", "_main", [
        ("chain", "_slow", []), ("chain", "_slow", []), ("chain", "_other", [])])])]
    assert [(r["input"], r["output"], r["metadata"]) for r in records[2:]] == [
        ({"n": 1}, 10, {"langgraph_node": "_slow", "langgraph_step": 0}),
        ({"n": 2}, 20, {"langgraph_node": "_slow", "langgraph_step": 0}),  # was also a cache_hit of output 10
        ({"n": 3}, 3, {"langgraph_node": "_other", "langgraph_step": 0})]
    assert autotrace.stats()["langgraph_cache_hits_of_running_tasks"] == 1
    _nothing_open()


@entrypoint(cache=InMemoryCache())
def _in_turn(x: int) -> list[int]:
    return [_slow(1).result(), _slow(3).result()]


def test_a_task_its_cache_answers_is_still_a_cache_hit(traced: Traced) -> None:
    _second_running.set()  # (the first call does not wait here: no second runs beside it)
    assert _in_turn.invoke(0) == [10, 10]  # the second call answered by the cache: its key is the first's
    records = traced.records()
    assert [(r["name"], r["input"], r["output"], r["metadata"].get("cache_hit")) for r in records[2:]] == [
        ("_slow", {"n": 1}, 10, None), ("_slow", {"n": 3}, 10, True)]
    assert autotrace.stats().get("langgraph_cache_hits_of_running_tasks", 0) == 0
    _nothing_open()
