"""A scope helper's object kept and entered in several places at once (``SYSTEM = tenant("system")``,
then ``with SYSTEM:`` in each of many concurrent tasks or threads): every block gets the scope and
puts back what it found, in its own task or thread. It raised RuntimeError into every block entered
while another was open (a ``contextmanager`` before could not be entered twice at all)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import autotrace
from autotrace.context import capture_enabled, current_trace_attributes
from tests.helpers import Traced


def test_one_tenant_object_entered_by_concurrent_tasks(traced: Traced) -> None:
    system = autotrace.tenant("system")

    async def job(i: int) -> Any:
        before = autotrace.current_tenant()
        with system as name:
            await asyncio.sleep(0.01 * (3 - i))  # the blocks end in the reverse order of their start
            with autotrace.start_span(f"job{i}"):
                pass
            inside = autotrace.current_tenant()
        return before, name, inside, autotrace.current_tenant()

    async def main() -> Any:
        async def other() -> Any:  # a task in another tenant's scope around it
            with autotrace.tenant("acme"):
                return await job(3)
        return await asyncio.gather(job(0), job(1), job(2), other())

    assert asyncio.run(main()) == [(None, "system", "system", None)] * 3 + [("acme", "system", "system", "acme")]
    assert sorted((r["name"], r["tenant"]) for r in traced.records()) == [
        ("job0", "system"), ("job1", "system"), ("job2", "system"), ("job3", "system")]


def test_one_scope_object_entered_by_concurrent_threads_and_nested() -> None:
    attrs, off = autotrace.trace_attributes(user_id="u1"), autotrace.content_capture(False)
    barrier = threading.Barrier(4)
    seen: list[Any] = []

    def worker() -> None:
        with attrs, off:
            barrier.wait(5)  # all four blocks are open at once
            with attrs, off:  # nested in itself
                inner = ((current_trace_attributes() or {}).get("user.id"), capture_enabled())
            barrier.wait(5)
            middle = ((current_trace_attributes() or {}).get("user.id"), capture_enabled())
        seen.append((inner, middle, current_trace_attributes(), capture_enabled()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == [(("u1", False), ("u1", False), None, True)] * 4


def test_a_block_that_fails_to_enter_leaves_the_scope_usable() -> None:
    bad = autotrace.tenant("not a tenant!")
    for _ in range(2):
        try:
            with bad:
                raise AssertionError("entered")
        except ValueError:
            pass
    assert autotrace.current_tenant() is None
    good = autotrace.tenant("acme")
    with good:
        with good:
            assert autotrace.current_tenant() == "acme"
        assert autotrace.current_tenant() == "acme"
    assert autotrace.current_tenant() is None


def test_a_block_left_in_another_context_never_takes_an_open_block_s_undoing() -> None:
    """A block of a shared object left in another context than it was entered in (a generator
    stepped in a thread pool, each step in a copy of the context) cannot be told from the object's
    other open blocks: it undoes none of theirs, so each of them still ends its own."""
    shared = autotrace.tenant("acme")
    stepped = contextvars.copy_context()
    stepped.run(shared.__enter__)  # the generator's block, entered at one step
    with shared:  # the request's block, open meanwhile
        contextvars.copy_context().run(shared.__exit__, None, None, None)  # left at a later step
        assert autotrace.current_tenant() == "acme"
    assert autotrace.current_tenant() is None
    assert stepped.run(autotrace.current_tenant) == "acme"  # that context keeps it, as before
