"""A pool's worker thread serves task after task, for any tenant: what one task leaves of
autotrace's state (a tenant it set, a stream it left current) must never reach the next one,
also when the tasks were submitted outside any traced work (a job runner's loop)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace

import autotrace
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("threads")


def _job(customer: str | None) -> str | None:
    """A job as a runner's pool runs it: it names its customer, if it has one, for the rest of the job."""
    if customer is not None:
        autotrace.set_tenant(customer)  # no reset: the job ends here
    with autotrace.start_span(f"job-{customer}"):
        return autotrace.current_tenant()


def test_a_tenant_set_by_an_untraced_task_stays_with_that_task(traced: Traced) -> None:
    with ThreadPoolExecutor(1) as pool:  # one worker: every task runs on the same thread
        assert pool.submit(_job, "acme").result() == "acme"
        assert pool.submit(_job, None).result() is None
        assert list(pool.map(_job, ["globex", None])) == ["globex", None]
    records = traced.records()
    assert [(r["name"], r["tenant"], r["parent_id"]) for r in records] == [
        ("job-acme", "acme", None), ("job-None", None, None), ("job-globex", "globex", None), ("job-None", None, None)]
    assert len({r["trace_id"] for r in records}) == 4


def _stream() -> Iterator[int]:
    with autotrace.start_span("stream"):
        yield 1
        yield 2


def _open_stream(customer: str) -> Iterator[int]:
    """A task that starts its customer's stream and hands it back, to be read by the submitter."""
    autotrace.set_tenant(customer)
    stream = _stream()
    next(stream)
    return stream


def test_a_stream_an_untraced_task_left_open_adopts_no_later_task(traced: Traced) -> None:
    with ThreadPoolExecutor(1) as pool:
        stream = pool.submit(_open_stream, "acme").result()
        assert list(stream) == [2]  # finished on this thread: the worker cannot be told
        assert pool.submit(_job, None).result() is None
        assert pool.submit(_job, "globex").result() == "globex"
        assert pool.submit(lambda: trace.get_current_span().get_span_context().is_valid).result() is False
    by_name = {r["name"]: r for r in traced.records()}
    assert [(n, r["tenant"], r["parent_id"]) for n, r in by_name.items()] == [
        ("stream", "acme", None), ("job-None", None, None), ("job-globex", "globex", None)]
    assert len({r["trace_id"] for r in by_name.values()}) == 3


def test_run_in_executor_outside_traced_work_leaves_nothing_for_the_next_call(traced: Traced) -> None:
    async def main() -> list[str | None]:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1) as pool:
            return [await loop.run_in_executor(pool, _job, customer) for customer in ("acme", None)]

    assert asyncio.run(main()) == ["acme", None]
    assert [(r["name"], r["tenant"]) for r in traced.records()] == [("job-acme", "acme"), ("job-None", None)]


def test_the_worker_s_own_state_still_applies_to_untraced_tasks(traced: Traced) -> None:
    """A pool whose initializer names the tenant of every task it runs keeps it."""
    with ThreadPoolExecutor(1, initializer=autotrace.set_tenant, initargs=("acme",)) as pool:
        assert pool.submit(_job, None).result() == "acme"
        assert pool.submit(_job, "globex").result() == "globex"
        assert pool.submit(autotrace.current_tenant).result() == "acme"
    assert [(r["name"], r["tenant"]) for r in traced.records()] == [("job-None", "acme"), ("job-globex", "globex")]
