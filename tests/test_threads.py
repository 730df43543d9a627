"""Tasks run by a ThreadPoolExecutor carry the submitter's tracing state (``integrations.threads``)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from opentelemetry import trace

import autotrace
from autotrace import stats
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("threads")


@autotrace.traced_tool
def lookup(order: str) -> str:
    return f"{order}: shipped"


def _worker_state() -> tuple[str | None, bool, str]:
    """What a task sees: the tenant, whether a span is current, and its thread's name."""
    return (autotrace.current_tenant(), trace.get_current_span().get_span_context().is_valid,
            threading.current_thread().name)


def test_parallel_tool_calls_join_the_turn_under_its_tenant(traced: Traced) -> None:
    with autotrace.tenant("acme"), autotrace.start_agent("turn"), ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lookup, ["o1", "o2", "o3"])) == ["o1: shipped", "o2: shipped", "o3: shipped"]
        assert pool.submit(lookup, order="o4").result() == "o4: shipped"
    records = traced.records()
    assert shape(records) == [("agent", "turn", [("tool", "lookup", [])] * 4)]
    assert {(r["tenant"], r["trace_id"]) for r in records} == {("acme", records[0]["trace_id"])}
    assert sorted(r["output"] for r in records if r["type"] == "tool") == [f"o{i}: shipped" for i in range(1, 5)]


def test_a_worker_keeps_nothing_after_a_traced_task(traced: Traced) -> None:
    with ThreadPoolExecutor(1) as pool:  # one worker: both tasks run on the same thread
        with autotrace.tenant("acme"), autotrace.start_span("request"):
            inside = pool.submit(_worker_state).result()
        after = pool.submit(_worker_state).result()
    assert inside[:2] == ("acme", True)
    assert after[:2] == (None, False) and after[2] == inside[2]


def test_outside_traced_work_a_task_is_handed_over_unchanged(traced: Traced) -> None:
    mine: contextvars.ContextVar[str] = contextvars.ContextVar("mine", default="unset")

    def set_mine() -> None:
        mine.set("left by the first task")  # the application's own variable: a worker keeps it, as without us

    with ThreadPoolExecutor(1) as pool:
        pool.submit(set_mine).result()
        assert pool.submit(mine.get).result() == "left by the first task"
        with autotrace.tenant("acme"):  # a traced task changes only autotrace's state
            assert pool.submit(mine.get).result() == "left by the first task"
    assert traced.records() == []


def test_a_task_s_result_and_error_are_its_own(traced: Traced) -> None:
    def fail() -> None:
        raise KeyError("missing")

    with autotrace.tenant("acme"), autotrace.start_span("request"), ThreadPoolExecutor(1) as pool:
        failed = pool.submit(fail)
        with pytest.raises(KeyError, match="missing") as raised:
            failed.result()
        assert pool.submit(divmod, 7, 2).result() == (3, 1)
    assert type(raised.value) is KeyError and not [key for key in stats() if key.startswith("internal_errors")]


def test_run_in_executor_carries_the_task_s_tenant(traced: Traced) -> None:
    async def main() -> list[str]:
        async def one(tenant: str) -> str:
            with autotrace.tenant(tenant), autotrace.start_span(f"request-{tenant}"):
                return await asyncio.get_running_loop().run_in_executor(None, lookup, tenant)

        return await asyncio.gather(one("acme"), one("globex"))

    assert asyncio.run(main()) == ["acme: shipped", "globex: shipped"]
    tools = {r["output"]: r["tenant"] for r in traced.records() if r["type"] == "tool"}
    assert tools == {"acme: shipped": "acme", "globex: shipped": "globex"}


def test_a_pool_subclass_and_a_thread_of_one_s_own(traced: Traced) -> None:
    class Counting(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
            return super().submit(fn, *args, **kwargs)

    seen: list[tuple[str | None, bool, str]] = []
    with autotrace.tenant("acme"), autotrace.start_span("request"):
        with Counting(1) as pool:
            seen.append(pool.submit(_worker_state).result())
        thread = threading.Thread(target=lambda: seen.append(_worker_state()))  # not carried: it may outlive the request
        thread.start()
        thread.join()
    assert [s[:2] for s in seen] == [("acme", True), (None, False)]


def test_disabled_the_tasks_start_tenantless_traces(tmp_path: Path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("threads",),
                      disabled_integrations=("threads",), export_interval=0.05)
    with autotrace.tenant("acme"), ThreadPoolExecutor(1) as pool:
        assert pool.submit(_worker_state).result()[:2] == (None, False)


def test_uninstall_restores_submit(traced: Traced) -> None:
    patched = ThreadPoolExecutor.submit
    autotrace.uninstall()
    assert ThreadPoolExecutor.submit is not patched
    with autotrace.tenant("acme"), ThreadPoolExecutor(1) as pool:
        assert pool.submit(_worker_state).result()[:2] == (None, False)
