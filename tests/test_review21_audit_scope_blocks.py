"""A long-lived scope object (``SYSTEM = autotrace.tenant("system")``) entered by many blocks that
end in another context than they began in (a sync body Starlette steps in its thread pool, each step
in a fresh copy of the task's context) forgets those blocks: it held every one of them for good."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

from starlette.concurrency import iterate_in_threadpool

import autotrace

ROUNDS, CONCURRENT = 40, 50


def test_blocks_left_in_other_contexts_are_not_held_by_a_long_lived_scope() -> None:
    system = autotrace.tenant("system")

    def rows() -> Iterator[str | None]:
        with system:
            yield autotrace.current_tenant()
            yield "next step"  # (run in another copy of the task's context)

    async def read(n: int) -> list[list[str | None]]:
        async def one() -> list[str | None]:
            return [row async for row in iterate_in_threadpool(rows())]

        return await asyncio.gather(*(one() for _ in range(n)))

    for _ in range(ROUNDS):
        assert asyncio.run(read(CONCURRENT)) == [["system", "next step"]] * CONCURRENT
    gc.collect()
    assert len(system.open) == 0  # was ROUNDS * CONCURRENT, less the few told apart (one open)
    # each block ended where it could not be undone: counted once, as before
    assert autotrace.stats().get("context_not_restored") == ROUNDS * CONCURRENT
    assert autotrace.current_tenant() is None


def test_a_shared_scope_still_undoes_each_block_in_its_own_context() -> None:
    system = autotrace.tenant("system")

    async def task(i: int) -> tuple[str | None, str | None, str | None]:
        with system:
            inside = autotrace.current_tenant()
            await asyncio.sleep(0.001 * (i % 3))
            with system:  # within its own block
                await asyncio.sleep(0)
            again = autotrace.current_tenant()
        return inside, again, autotrace.current_tenant()

    async def main() -> list[tuple[str | None, str | None, str | None]]:
        return await asyncio.gather(*(task(i) for i in range(200)))

    assert asyncio.run(main()) == [("system", "system", None)] * 200
    assert len(system.open) == 0
    assert "context_not_restored" not in autotrace.stats()
