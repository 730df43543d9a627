"""Callbacks given to a ``concurrent.futures.Future`` (``add_done_callback``) run in the tracing
state of the code that added them, wherever the future is completed (``integrations.threads``)."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

import pytest
from opentelemetry import trace

import autotrace
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("threads")


def _state() -> tuple[str | None, bool]:
    return autotrace.current_tenant(), trace.get_current_span().get_span_context().is_valid


def _record(seen: list[tuple[str | None, bool]]) -> object:
    """A done callback that records a span and what it saw."""

    def done(future: Future[object]) -> None:
        seen.append(_state())
        with autotrace.start_span("on-done"):
            pass

    return done


def test_a_pool_future_s_callback_continues_the_request_that_added_it(traced: Traced) -> None:
    seen: list[tuple[str | None, bool]] = []
    gate = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        with autotrace.tenant("acme"), autotrace.start_span("request"):
            future = pool.submit(gate.wait)
            future.add_done_callback(_record(seen))  # pending: run by the worker as the task ends
            gate.set()
            future.result()
        pool.submit(int).result()  # the callback has run: it runs before the worker takes another task
        after = pool.submit(_state).result()
    assert seen == [("acme", True)] and after == (None, False)
    records = traced.records()
    assert shape(records) == [("span", "request", [("span", "on-done", [])])]
    assert {r["tenant"] for r in records} == {"acme"}


def test_a_callback_never_runs_in_the_tenant_of_the_thread_that_completes_it(traced: Traced) -> None:
    """A batch led by one tenant's request completes every waiter's future: each callback is its
    adder's work, never the leader's."""
    seen: list[tuple[str | None, bool]] = []
    future: Future[int] = Future()
    added = threading.Event()

    def waiter() -> None:
        with autotrace.tenant("acme"), autotrace.start_span("acme-request"):
            future.add_done_callback(fn=_record(seen))  # by name: carried too
        added.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    added.wait(10)
    with autotrace.tenant("globex"), autotrace.start_span("globex-leads-the-batch"):
        future.set_result(1)
        assert _state() == ("globex", True)
    thread.join()
    assert seen == [("acme", True)]
    by_name = {r["name"]: r for r in traced.records()}
    assert by_name["on-done"]["tenant"] == "acme"
    assert by_name["on-done"]["trace_id"] == by_name["acme-request"]["trace_id"]
    assert by_name["on-done"]["parent_id"] == by_name["acme-request"]["id"]


def test_a_callback_added_outside_traced_work_runs_in_no_tenant(traced: Traced) -> None:
    seen: list[tuple[str | None, bool]] = []
    future: Future[int] = Future()
    future.add_done_callback(lambda f: seen.append(_state()))
    with autotrace.tenant("globex"), autotrace.start_span("globex-request"):
        future.set_result(1)
    assert seen == [(None, False)]


def test_a_callback_s_result_errors_and_changes_stay_its_own(traced: Traced) -> None:
    def leaks(future: Future[int]) -> None:
        autotrace.set_tenant("globex")  # a callback's own change stays in it
        raise RuntimeError("callback failed")  # logged by the future, as without autotrace

    future: Future[int] = Future()
    with autotrace.tenant("acme"):
        future.add_done_callback(leaks)
    completer: list[str | None] = []
    thread = threading.Thread(target=lambda: (future.set_result(7), completer.append(autotrace.current_tenant())))
    thread.start()
    thread.join()
    assert future.result() == 7 and completer == [None]
    with autotrace.tenant("acme"):  # already done: run at once, on the adder's thread
        future.add_done_callback(leaks)
        assert autotrace.current_tenant() == "acme"


def test_a_process_pool_future_s_callback_runs_in_the_adder_s_tenant(traced: Traced) -> None:
    seen: list[tuple[str | None, bool]] = []
    done = threading.Event()
    with ProcessPoolExecutor(1) as pool, autotrace.tenant("acme"), autotrace.start_span("request"):
        future = pool.submit(divmod, 7, 2)
        future.add_done_callback(lambda f: (seen.append(_state()), done.set()))
        assert future.result() == (3, 1)
        done.wait(10)
    assert seen == [("acme", True)]


def test_uninstall_restores_add_done_callback(traced: Traced) -> None:
    patched = Future.__dict__["add_done_callback"]
    autotrace.uninstall()
    assert Future.__dict__["add_done_callback"] is not patched
    assert not hasattr(Future.__dict__["add_done_callback"], "__wrapped__")
    seen: list[tuple[str | None, bool]] = []
    future: Future[int] = Future()
    with autotrace.tenant("acme"):
        future.add_done_callback(lambda f: seen.append(_state()))
    future.set_result(1)
    assert seen == [(None, False)]


@autotrace.traced_tool
def lookup(order: str) -> str:
    return f"{order}: shipped"


def test_a_callback_keeps_the_request_s_content_capture_off(traced: Traced) -> None:
    """Privacy: a request that turned capture off keeps it off in its callbacks, wherever they run."""
    gate = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        with autotrace.tenant("acme"), autotrace.content_capture(False), autotrace.start_span("request"):
            future = pool.submit(gate.wait)
            future.add_done_callback(lambda f: lookup("card 4242"))
            gate.set()
            future.result()
        pool.submit(int).result()  # the callback has run
    records = traced.records()
    assert shape(records) == [("span", "request", [("tool", "lookup", [])])]
    assert [(r["tenant"], r["input"], r["output"]) for r in records] == [("acme", None, None)] * 2
