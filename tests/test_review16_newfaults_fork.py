"""A failure of autotrace's in the hook ``multiprocessing`` runs in a process it forks, before the
target (``ThreadsIntegration._in_started_process``), never reaches the child's target, and is
counted and logged in the child: before, ``multiprocessing`` swallowed it (a debug line of its own
logger), so the child ran on in the forking request's state with nothing said."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

import autotrace
from autotrace import carried
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("threads")


def _failing(where: str) -> None:
    raise RuntimeError("internal")


def _job(n: int) -> tuple[int, int | None]:
    return n * 2, autotrace.stats().get("internal_errors.threads")


def test_a_failing_after_fork_hook_is_counted_in_the_child_and_its_target_runs(
        traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(carried, "forget", _failing)  # the forked child inherits the failing one
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        with autotrace.tenant("acme"):
            assert pool.submit(_job, 21).result(timeout=60) == (42, 1)
    assert autotrace.stats().get("internal_errors.threads") is None  # the parent's own: nothing failed here
