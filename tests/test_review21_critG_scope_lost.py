"""A block of a shared scope whose context is gone (a generator's first step run in a copy of the
context, by a thread pool) must not make another context's open block look like the only one: a
stray exit took that block, whose own exit then left its tenant in scope for good."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator

import autotrace


def test_a_stray_exit_does_not_take_the_block_of_a_context_still_in_it() -> None:
    system = autotrace.tenant("system")

    def rows() -> Iterator[int]:
        with system:
            yield 1
            yield 2

    inside, release, seen = threading.Event(), threading.Event(), []

    def worker() -> None:  # a thread of its own, in system's block while the generator ends
        with system:
            inside.set()
            release.wait(10)
            seen.append(autotrace.current_tenant())
        seen.append(autotrace.current_tenant())

    async def main() -> None:
        gen = rows()
        assert await asyncio.to_thread(next, gen) == 1  # entered in a copy of the context, gone after
        gc.collect()
        thread = threading.Thread(target=worker)
        thread.start()
        assert inside.wait(10)
        await asyncio.to_thread(gen.close)  # left in another copy: no block of its own there
        release.set()
        thread.join(10)

    asyncio.run(main())
    assert seen == ["system", None]  # the worker's block undone at its own exit (was "system", None)
    assert autotrace.current_tenant() is None
    assert autotrace.stats().get("context_not_restored") == 1  # the generator's block, once
    gc.collect()
    assert len(system.open) == 0
