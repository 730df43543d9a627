"""``multiprocessing.pool.ThreadPool`` (``multiprocessing.dummy.Pool``, Pinecone's ``async_req``
pool) ran every task with none of its submitter's context: work submitted inside a tenant's request
was a tenantless trace of its own. Each submitting method now carries the submitter's tracing state
into its tasks and callbacks, and a pool thread keeps nothing of it; a process ``Pool`` is untouched."""

from __future__ import annotations

import importlib
import multiprocessing
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace

import autotrace
from autotrace import stats
from tests.helpers import Traced, isolated_env, shape, unordered

pytestmark = pytest.mark.integrations("threads")


@pytest.fixture
def pools() -> Any:
    """``multiprocessing.pool``, imported by the tests only (not at collection: ``autotrace info``
    counts its patch points once the application has imported it)."""
    return pytest.importorskip("multiprocessing.pool")


def _step(n: int) -> tuple[int, str | None]:
    with autotrace.start_span(f"step-{n}"):
        return n, autotrace.current_tenant()


def _pair(n: int, m: int) -> tuple[int, str | None]:
    return _step(n + m)


def _seen(*_: Any) -> tuple[str | None, bool]:
    """The tenant a pool thread sees, and whether a span is current there."""
    return autotrace.current_tenant(), trace.get_current_span().get_span_context().is_valid


#: Each submitting method, called as an application does, answering the results in order.
SUBMITTERS: dict[str, Callable[[Any], list[Any]]] = {
    "apply": lambda pool: [pool.apply(_step, (0,)), pool.apply(_step, (1,))],
    "apply_async": lambda pool: [pool.apply_async(_step, (n,)).get() for n in range(2)],
    "map": lambda pool: pool.map(_step, range(2)),
    "map_async": lambda pool: pool.map_async(_step, range(2)).get(),
    "starmap": lambda pool: pool.starmap(_pair, [(0, 0), (1, 0)]),
    "starmap_async": lambda pool: pool.starmap_async(_pair, [(0, 0), (0, 1)]).get(),
    "imap": lambda pool: list(pool.imap(_step, iter(range(2)))),
    "imap_unordered": lambda pool: sorted(pool.imap_unordered(_step, range(2))),
    "imap_chunks": lambda pool: list(pool.imap(_step, range(2), chunksize=2)),
    "imap_unordered_chunks": lambda pool: sorted(pool.imap_unordered(_step, range(2), chunksize=2)),
    "map_chunks_of_one": lambda pool: pool.map(_step, range(2), chunksize=1),
}


@pytest.mark.parametrize("pool_type", ["multiprocessing.pool.ThreadPool", "multiprocessing.dummy.Pool"])
@pytest.mark.parametrize("method", SUBMITTERS)
def test_each_submitting_method_runs_its_tasks_in_the_tenant_and_under_the_span(
        traced: Traced, method: str, pool_type: str) -> None:
    module, name = pool_type.rsplit(".", 1)
    with getattr(importlib.import_module(module), name)(2) as pool, autotrace.tenant("acme"), autotrace.start_span("request") as request:
        assert SUBMITTERS[method](pool) == [(0, "acme"), (1, "acme")]
    records = traced.records()
    assert unordered(shape(records)) == [("span", "request", [("span", "step-0", []), ("span", "step-1", [])])]
    assert {(r["trace_id"], r["tenant"]) for r in records} == {(request.trace_id, "acme")}


def test_two_tenants_share_one_pool(traced: Traced, pools: Any) -> None:
    start, answers = threading.Barrier(2), {}

    def request(tenant: str) -> None:
        with autotrace.tenant(tenant), autotrace.start_span(f"request-{tenant}"):
            start.wait()
            answers[tenant] = [pool.map(_step, range(4), chunksize=1), pool.apply_async(_step, (9,)).get(),
                               sorted(pool.imap_unordered(_step, range(4)))]

    with pools.ThreadPool(3) as pool:
        threads = [threading.Thread(target=request, args=(tenant,)) for tenant in ("acme", "globex")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for tenant in ("acme", "globex"):
        assert answers[tenant] == [[(n, tenant) for n in range(4)], (9, tenant), [(n, tenant) for n in range(4)]]
    records = traced.records()
    roots = {r["id"]: r for r in records if r["parent_id"] is None}
    assert sorted((r["name"], r["tenant"]) for r in roots.values()) == [("request-acme", "acme"),
                                                                         ("request-globex", "globex")]
    steps = [r for r in records if r["parent_id"] is not None]
    assert len(steps) == 18
    assert all(roots[r["parent_id"]]["tenant"] == r["tenant"] and roots[r["parent_id"]]["trace_id"] == r["trace_id"]
               for r in steps)


def _job(customer: str | None) -> tuple[str | None, bool, str]:
    """A job as a runner's pool runs it: it names its customer, if it has one, for the rest of the job."""
    if customer is not None:
        autotrace.set_tenant(customer)  # no reset: the job ends here
    return (*_seen(), threading.current_thread().name)


def test_a_pool_thread_keeps_nothing_between_tasks(traced: Traced, pools: Any) -> None:
    with pools.ThreadPool(1) as pool:  # one worker: every task runs on the same thread
        with autotrace.tenant("acme"), autotrace.start_span("request"):
            inside = pool.apply(_job, (None,))
        after = pool.apply(_job, (None,))
        assert pool.map(_job, ["globex", None]) == [("globex", False, inside[2]), (None, False, inside[2])]
        assert list(pool.imap(_job, ["initech", None])) == [("initech", False, inside[2]),
                                                            (None, False, inside[2])]
    assert inside[:2] == ("acme", True) and after == (None, False, inside[2])


def test_a_pool_initializer_s_tenant_still_applies_to_untraced_tasks(traced: Traced, pools: Any) -> None:
    with pools.ThreadPool(1, initializer=autotrace.set_tenant, initargs=("acme",)) as pool:
        assert pool.apply(_job, ("globex",))[0] == "globex"
        assert pool.apply(_seen) == ("acme", False)
        with autotrace.tenant("initech"):
            assert pool.apply(_seen) == ("initech", False)
        assert pool.apply(_seen) == ("acme", False)


def test_callbacks_run_in_the_submitter_s_state_and_leave_nothing(traced: Traced, pools: Any) -> None:
    """The callbacks run on the pool's result-handler thread, shared by every submitter."""
    seen: list[tuple[str, Any, tuple[str | None, bool]]] = []

    def callback(name: str) -> Callable[[Any], None]:
        def record(value: Any) -> None:
            with autotrace.start_span(name):
                seen.append((name, value if not isinstance(value, Exception) else repr(value), _seen()))
            autotrace.set_tenant("left-by-a-callback")  # no reset: must not reach the next callback

        return record

    with pools.ThreadPool(2) as pool:
        with autotrace.tenant("acme"), autotrace.start_span("request") as request:
            pool.apply_async(_step, (0,), callback=callback("applied")).get()
            pool.map_async(_step, range(2), callback=callback("mapped")).wait()
            failed = pool.starmap_async(divmod, [(1, 0)], error_callback=callback("failed"))
            with pytest.raises(ZeroDivisionError):
                failed.get()
        pool.apply_async(_seen, callback=callback("untraced")).get()
    assert seen == [("applied", (0, "acme"), ("acme", True)),
                    ("mapped", [(0, "acme"), (1, "acme")], ("acme", True)),
                    ("failed", "ZeroDivisionError('integer division or modulo by zero')", ("acme", True)),
                    ("untraced", (None, False), (None, True))]
    by_name = {r["name"]: r for r in traced.records()}
    assert {n: (r["tenant"], r["parent_id"]) for n, r in by_name.items() if n in ("applied", "mapped", "failed")} == {
        n: ("acme", request.id) for n in ("applied", "mapped", "failed")}
    assert (by_name["untraced"]["tenant"], by_name["untraced"]["parent_id"]) == (None, None)


def _fail(n: int) -> int:
    if n == 3:
        raise KeyError(n)
    return n


def _numbers_then_failure() -> Any:
    yield from range(2)
    raise ValueError("the input broke")


def test_results_errors_and_chunks_are_the_pool_s_own(traced: Traced, pools: Any) -> None:
    errors: list[BaseException] = []
    with pools.ThreadPool(2) as pool, autotrace.tenant("acme"):
        assert pool.map(_fail, range(3), chunksize=2) == [0, 1, 2]
        assert list(pool.imap(_fail, range(3), chunksize=2)) == [0, 1, 2]
        with pytest.raises(KeyError) as raised:
            pool.map(_fail, range(5), chunksize=2)
        assert type(raised.value) is KeyError and raised.value.args == (3,)
        failed = pool.map_async(_fail, range(5), error_callback=errors.append)
        failed.wait()
        assert not failed.successful() and errors == [failed._value] and type(errors[0]) is KeyError
        results = pool.imap(_fail, _numbers_then_failure())
        assert [next(results), next(results)] == [0, 1]
        with pytest.raises(ValueError, match="the input broke"):
            next(results)
        assert pool.starmap(divmod, [(7, 2), (9, 4)], chunksize=5) == [(3, 1), (2, 1)]
        assert pool.map(_fail, []) == [] and list(pool.imap(_fail, [])) == []
    assert not [key for key in stats() if key.startswith("internal_errors")]


def test_a_pool_made_before_install_and_one_made_during_it(tmp_path: Path, pools: Any) -> None:
    before = pools.ThreadPool(1)
    try:
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("threads",),
                          export_interval=0.05)
        during = pools.ThreadPool(1)
        assert during._task_handler._args[0] is during.__dict__["_taskqueue"]  # its handler got the bare queue
        with autotrace.tenant("acme"), autotrace.start_span("request"):
            assert before.apply(_seen) == during.apply(_seen) == ("acme", True)
        autotrace.uninstall()
        assert type(before._taskqueue) is type(during._taskqueue) is queue.SimpleQueue
        with autotrace.tenant("acme"):
            assert before.apply(_seen) == during.apply(_seen) == (None, False)
        during.terminate()
    finally:
        before.terminate()


def test_uninstall_restores_the_pool_classes(traced: Traced, pools: Any) -> None:
    original = pools.ApplyResult.__dict__["__init__"].__wrapped__
    assert isinstance(pools.ThreadPool.__dict__["_taskqueue"], property) and original.__name__ == "__init__"
    autotrace.uninstall()
    assert "_taskqueue" not in pools.ThreadPool.__dict__ and "_taskqueue" not in pools.Pool.__dict__
    assert pools.ApplyResult.__dict__["__init__"] is original
    with autotrace.tenant("acme"), pools.ThreadPool(1) as pool:
        assert pool.apply(_seen) == (None, False)
        done: list[tuple[str | None, bool]] = []
        pool.apply_async(_seen, callback=lambda _: done.append(_seen())).get()
        assert done == [(None, False)]


def test_disabled_the_pool_is_left_alone(tmp_path: Path, pools: Any) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("threads",),
                      disabled_integrations=("threads",), export_interval=0.05)
    assert "_taskqueue" not in pools.ThreadPool.__dict__ and not hasattr(pools.ApplyResult.__init__, "__wrapped__")
    with autotrace.tenant("acme"), pools.ThreadPool(1) as pool:
        assert pool.apply(_seen) == (None, False)


def test_a_process_pools_results_and_callbacks_are_the_applications(traced: Traced, pools: Any) -> None:
    """Its tasks carry the submitter's state (``test_review16_processpools_carried``): what they
    return, and what the callbacks get, are as without autotrace."""
    done: list[int] = []
    with autotrace.tenant("acme"), autotrace.start_span("request"):
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            result = pool.apply_async(os.getpid, callback=done.append)
            child = result.get(timeout=60)
            assert pool.map(abs, [-1, -2]) == [1, 2]
    assert done == [child] and child != os.getpid()


_IMPORTED_AFTER_INSTALL = """
import sys, autotrace
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=("threads",))
assert "multiprocessing.pool" not in sys.modules
from multiprocessing.pool import ThreadPool
with autotrace.tenant("acme"), ThreadPool(1) as pool:
    print(pool.apply(autotrace.current_tenant))
autotrace.uninstall()
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=("threads",))
with autotrace.tenant("globex"), ThreadPool(1) as pool:
    print(pool.apply(autotrace.current_tenant))
"""


def test_a_pool_module_imported_after_install_is_patched_at_its_import(tmp_path: Path) -> None:
    """Pinecone, for one, imports ``multiprocessing.pool`` at its first ``async_req`` call."""
    env = isolated_env(tmp_path)
    done = subprocess.run([sys.executable, "-c", _IMPORTED_AFTER_INSTALL, str(tmp_path / "t.db")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "acme\nglobex\n"), done.stderr


def test_pinecone_async_req_with_both_integrations(tmp_path: Path) -> None:
    """Pinecone's own carrying and this one's, both on: one tree, the caller's tenant."""
    pinecone = pytest.importorskip("pinecone")
    from tests.fake_pinecone import FakePinecone

    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pinecone", "threads"),
                      export_interval=0.05)
    with FakePinecone() as fake:
        index = pinecone.Pinecone(api_key="pc-test").Index(host=fake.url)
        with autotrace.tenant("acme"), autotrace.start_chain("request") as request:
            index.upsert(vectors=[("a", [1.0, 0.0], {"text": "alpha"})], namespace="kb", async_req=True).get()
            response = index.query(vector=[1.0, 0.1], top_k=2, namespace="kb", async_req=True).get()
        index._legacy_async_pool.close()
    records = Traced(tmp_path / "t.db").records()
    assert [m.id for m in response.matches] == ["a"]
    assert shape(records) == [("chain", "request", [("span", "pinecone.upsert", []),
                                                    ("retriever", "pinecone.query", [])])]
    assert {(r["trace_id"], r["tenant"]) for r in records} == {(request.trace_id, "acme")}


def _per_task(pool: Any, tasks: int = 4000) -> float:
    """The best of three ``map`` runs of tasks that do nothing, in µs per task (chunks of one)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        assert pool.map(abs, range(tasks), chunksize=1)[-1] == tasks - 1
        best = min(best, time.perf_counter() - started)
    return best / tasks * 1e6


def test_the_overhead_per_task_is_reported(tmp_path: Path, pools: Any) -> None:
    """Printed, not asserted (``-s`` shows it): a task of a ``map`` of chunks of one, bare and carried."""
    with pools.ThreadPool(2) as pool:
        bare = _per_task(pool)
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("threads",))
        untraced = _per_task(pool)
        with autotrace.tenant("acme"), autotrace.start_span("request"):
            carried = _per_task(pool)
    print(f"\nThreadPool task: bare {bare:.2f} µs, untraced {untraced - bare:+.2f} µs, "
          f"carried {carried - bare:+.2f} µs")
