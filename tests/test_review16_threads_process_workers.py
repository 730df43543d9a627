"""A process ``multiprocessing`` forks kept the forking thread's context: a ``ProcessPoolExecutor``
(or process ``Pool``) whose workers were forked inside one tenant's request ran every later task,
whoever submitted it, under that tenant and in that request's trace, so another tenant's work went
to its project. A pool's worker now starts with none of autotrace's state, as a spawned one does
(each task brings its own submitter's: ``test_review16_processpools_carried``); a plain ``Process``,
whose one target is the request's work, keeps it."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from opentelemetry import trace

import autotrace
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("threads")


def _job(n: int) -> tuple[str | None, bool, str]:
    """The tenant the task sees, whether a span was current, and the trace of a span it records."""
    current = trace.get_current_span().get_span_context().is_valid
    with autotrace.start_span(f"job-{n}") as span:
        return autotrace.current_tenant(), current, span.trace_id


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_process_pool_forked_in_one_tenants_request_runs_no_task_in_its_state(traced: Traced, method: str) -> None:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(method)) as pool:
        with autotrace.tenant("acme"), autotrace.start_span("request acme") as acme:
            first = pool.submit(_job, 1).result(timeout=60)  # the worker starts here, in acme's request
        with autotrace.tenant("globex"), autotrace.start_span("request globex") as globex:
            second = pool.submit(_job, 2).result(timeout=60)
        later = pool.submit(_job, 3).result(timeout=60)  # submitted outside any request
    if method == "spawn":  # a spawned worker without install() runs its tasks as they are
        assert first[:2] == second[:2] == later[:2] == (None, False)
        return
    assert (first[:2], second[:2], later[:2]) == (("acme", True), ("globex", True), (None, False))
    assert (first[2], second[2]) == (acme.trace_id, globex.trace_id)  # the child exports at its exit
    assert shape(traced.trace(acme.trace_id)) == [("span", "request acme", [("span", "job-1", [])])]
    assert shape(traced.trace(globex.trace_id)) == [("span", "request globex", [("span", "job-2", [])])]
    assert [(r["name"], r["tenant"], r["parent_id"]) for r in traced.trace(later[2])] == [("job-3", None, None)]


def _started(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(_job(0)[:2])


def test_a_forked_pool_starts_in_no_ones_state_a_plain_process_in_its_requests(traced: Traced) -> None:
    fork = multiprocessing.get_context("fork")
    with autotrace.tenant("acme"), autotrace.start_span("request") as request:
        queue = fork.Queue()
        process = fork.Process(target=_started, args=(queue,))
        process.start()
        seen = queue.get(timeout=60)
        process.join(60)
        pool = fork.Pool(1)  # its worker forked in acme's request
        pooled = pool.apply(_job, (1,))[:2]  # a task runs in its own submitter's state
        assert autotrace.current_tenant() == "acme"  # this process's state is its own
        assert trace.get_current_span() is request.span
    with pool:
        unowned = pool.apply(_job, (2,))[:2]  # submitted by no one: the worker kept nothing of acme's
    assert seen == pooled == ("acme", True) and unowned == (None, False)


def test_uninstalled_a_forked_process_is_left_as_python_leaves_it(tmp_path: Path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("threads",))
    autotrace.uninstall()
    with autotrace.tenant("acme"):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            assert pool.submit(autotrace.current_tenant).result(timeout=60) == "acme"
