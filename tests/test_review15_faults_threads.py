"""Autotrace's own thread-pool carrying failing (fifteenth review): a task handed to a real
``ThreadPoolExecutor`` or ``ThreadPool`` returns or raises what it would untraced, the pool keeps
working, and the failure is counted. Only autotrace's functions are made to raise."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import autotrace
from autotrace import carried
from autotrace.integrations import threads
from tests.helpers import Traced
from tests.test_faults_review4 import _raise
from tests.test_faults_review4_more import _internal_errors

pytestmark = pytest.mark.integrations("threads")


def _double(n: int) -> int:
    return 2 * n


def _fails(n: int) -> int:
    raise KeyError(n)


def _submitted(fn: Any, arg: int) -> Any:
    """Run ``fn(arg)`` in an executor, from inside a span (so the submitter's state is carried)."""
    with autotrace.start_span("request"), ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, arg).result(10)


@pytest.mark.parametrize("internal", ["enter", "leave"])
def test_a_task_whose_state_cannot_be_set_or_put_back_returns_its_own_result(
        traced: Traced, monkeypatch: pytest.MonkeyPatch, internal: str) -> None:
    """Setting the submitter's state on the worker, or putting the worker's back, failed: the task
    returns its value (the failure was raised in its stead) and its error stays its own."""
    monkeypatch.setattr(carried, internal, _raise)
    assert _submitted(_double, 21) == 42
    with pytest.raises(KeyError):
        _submitted(_fails, 1)
    monkeypatch.undo()
    assert [r["name"] for r in traced.records()] == ["request", "request"]
    assert _internal_errors() == {"threads": 2}


def test_a_thread_pool_imap_whose_tasks_cannot_be_wrapped_still_runs_them(
        traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    """Wrapping an ``imap`` task failed on the pool's task-handler thread: the tasks run as they are
    (the failure killed that thread: ``imap`` and every later submission waited for good)."""
    pools = pytest.importorskip("multiprocessing.pool")
    monkeypatch.setattr(threads, "_task", _raise)
    with pools.ThreadPool(2) as pool:
        results = pool.imap(_double, range(3))
        assert [results.next(10) for _ in range(3)] == [0, 2, 4]
        assert pool.apply_async(_double, (5,)).get(10) == 10
    monkeypatch.undo()
    assert _internal_errors() == {"threads": 4}
