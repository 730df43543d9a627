"""A task submitted to a process pool (``ProcessPoolExecutor``, a process ``multiprocessing.Pool``)
ran in a worker that starts with no one's state: its spans were new, tenantless traces, dropped by
the default ``unknown_tenant="drop"``. It now carries its submitter's tenant, capture setting and
current span (a ``traceparent``) to the worker, for every start method, and the worker keeps none
of it. Spawned workers install autotrace themselves (as ``autotrace run``'s do), into the same store."""

from __future__ import annotations

import functools
import multiprocessing
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace

import autotrace
from autotrace.context import capture_enabled
from tests.helpers import Traced, shape, unordered

pytestmark = pytest.mark.integrations("threads")
METHODS = ["fork", "spawn", "forkserver"]


def _job(n: int) -> tuple[str | None, bool, bool]:
    """Records ``job-<n>``; the tenant, capture setting and whether a span was current, as the task saw them."""
    current = trace.get_current_span().get_span_context().is_valid
    with autotrace.start_span(f"job-{n}"):
        return autotrace.current_tenant(), capture_enabled(), current


def _pair(a: int, b: int) -> tuple[str | None, bool, bool]:
    return _job(10 * a + b)


def _fails(n: int) -> None:
    raise KeyError(f"job {n}")


def _sets_tenant() -> str | None:
    autotrace.set_tenant("globex")
    return autotrace.current_tenant()


def _seen() -> tuple[str | None, bool]:
    return autotrace.current_tenant(), trace.get_current_span().get_span_context().is_valid


def _caller() -> str:
    """The module that called the task: autotrace's carrier, or the pool's own worker."""
    return Path(sys._getframe(1).f_code.co_filename).name


def _context(method: str, traced: Traced) -> tuple[Any, Callable[..., Any] | None]:
    """The start method's context, and for a spawned worker the install it runs first."""
    if method == "fork":
        return multiprocessing.get_context(method), None
    return multiprocessing.get_context(method), functools.partial(
        autotrace.install, local_store="on", local_store_path=traced.path, integrations=("threads",),
        export_interval=0.05)


@contextmanager
def _executor(method: str, traced: Traced) -> Iterator[ProcessPoolExecutor]:
    context, install = _context(method, traced)
    with ProcessPoolExecutor(1, mp_context=context, initializer=install) as pool:
        yield pool  # leaving it waits for the worker's exit, and so its export


def _tree(traced: Traced, trace_id: str) -> list[Any]:
    records = traced.trace(trace_id)
    assert {r["tenant"] for r in records} == {records[0]["tenant"]}, records
    return [records[0]["tenant"], unordered(shape(records))]


@pytest.mark.parametrize("method", METHODS)
def test_a_process_pool_executors_tasks_run_in_their_submitters_tenant_and_trace(traced: Traced, method: str) -> None:
    with _executor(method, traced) as pool:
        with autotrace.tenant("acme"), autotrace.start_span("request acme") as acme:
            first = pool.submit(_job, 1).result(timeout=60)  # the worker starts here, in acme's request
            mapped = list(pool.map(_job, [2, 3], timeout=60))
        with autotrace.tenant("globex"), autotrace.content_capture(False), \
                autotrace.start_span("request globex") as globex:
            second = pool.submit(_job, 4).result(timeout=60)
        later = pool.submit(_seen).result(timeout=60)  # outside any request: the worker kept nothing
    assert (first, mapped, second, later) == (
        ("acme", True, True), [("acme", True, True)] * 2, ("globex", False, True), (None, False))
    assert _tree(traced, acme.trace_id) == ["acme", [("span", "request acme", [
        ("span", "job-1", []), ("span", "job-2", []), ("span", "job-3", [])])]]
    assert _tree(traced, globex.trace_id) == ["globex", [("span", "request globex", [("span", "job-4", [])])]]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_every_submitting_method_of_a_process_pool_carries_the_submitters_state(traced: Traced, method: str) -> None:
    context, install = _context(method, traced)
    called: list[tuple[str | None, bool]] = []
    with context.Pool(2, initializer=install) as pool:
        with autotrace.tenant("acme"), autotrace.start_span("request") as request:
            seen = [pool.apply(_job, (1,)), pool.apply_async(_job, (2,), callback=lambda _: called.append(_seen()))
                    .get(60), *pool.map(_job, [3, 4]), *pool.map_async(_job, [5]).get(60),
                    *pool.imap(_job, [6, 7]), *pool.imap(_job, [8, 9], chunksize=2),
                    *pool.imap_unordered(_job, [11]), *pool.starmap(_pair, [(1, 2)]),
                    *pool.starmap_async(_pair, [(1, 3)]).get(60)]
        pool.close()
        pool.join()
    assert seen == [("acme", True, True)] * 12 and called == [("acme", True)]  # the callback: in this process
    assert _tree(traced, request.trace_id) == ["acme", [("span", "request", sorted(
        ("span", f"job-{n}", []) for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13)))]]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_tasks_result_error_and_pickling_failure_are_its_own(traced: Traced, method: str) -> None:
    with _executor(method, traced) as pool, autotrace.tenant("acme"), autotrace.start_span("request"):
        with pytest.raises(KeyError) as raised:
            pool.submit(_fails, 1).result(timeout=60)
        assert raised.value.args == ("job 1",)
        local = pool.submit(_local_function()).exception(timeout=60)  # raised where it is without autotrace
        assert (type(local), str(local)) == (AttributeError, _UNPICKLABLE)
        assert pool.submit(divmod, 7, 2).result(timeout=60) == (3, 1)
    context, install = _context(method, traced)
    with context.Pool(1, initializer=install) as pool, autotrace.tenant("acme"):
        with pytest.raises(AttributeError) as unpicklable:
            pool.apply(_local_function())
        assert str(unpicklable.value) == _UNPICKLABLE
        with pytest.raises(KeyError):
            pool.map(_fails, [1])


_UNPICKLABLE = "Can't pickle local object '_local_function.<locals>.f'"


def _local_function() -> Callable[[], int]:
    def f() -> int:
        return 1
    return f


def test_a_task_leaves_the_worker_as_it_was_one_without_state_too(traced: Traced) -> None:
    fork = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(1, mp_context=fork) as pool, fork.Pool(1) as processes:
        with autotrace.tenant("acme"):
            assert pool.submit(_sets_tenant).result(timeout=60) == "globex"
            assert processes.apply(_sets_tenant) == "globex"
            carried = pool.submit(_caller).result(timeout=60), processes.apply(_caller)
        assert pool.submit(_seen).result(timeout=60) == processes.apply(_seen) == (None, False)
        bare = pool.submit(_caller).result(timeout=60), processes.apply(_caller)
        autotrace.uninstall()
        with autotrace.tenant("acme"):
            uninstalled = pool.submit(_caller).result(timeout=60), processes.apply(_caller)
    assert carried == bare == ("carried.py", "carried.py")  # run by the wrapper (carried.Carrying)
    assert uninstalled == ("process.py", "pool.py")
