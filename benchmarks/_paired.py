"""Paired timing: a contender's added time measured inside one interpreter, its patches switched
off and on between blocks of calls.

Timing each contender in its own interpreter against a bare interpreter compares two memory
layouts as well as two libraries: on this machine the bare SDK's own time moves by tens of µs
from one interpreter to the next, as much as the smaller libraries add. Here the difference is
taken between neighbouring blocks of the same interpreter instead:

- the patch points are found by comparing every class and function of the instrumented
  package's modules before and after the contender instruments it (the benchmark makes each of
  its calls once before, bare, so every module they use is loaded by then);
- each round runs one block with the patched attributes and one with the originals put back, in
  a random order (seeded), after two untimed calls that absorb the switch;
- the result per column is the median of the rounds' differences, with its quartiles.

Several contenders can also share one interpreter (``compare``): each is set up with the
others' patches switched off, so it finds only its own, and a round times one block per
contender, with only its patches in place, and one bare block. Their differences from the bare
block are then taken on the same memory layout of the SDK and in the same moments of the
machine, which separate interpreters, run one after another, cannot give.

Everything else a contender set up (its provider, its export thread) stays in place in every
block. With short blocks (the benchmarks' default), its background export work runs whenever its
thread wakes (autotrace's every 0.25 s, the OpenTelemetry batch processor's every 5 s), as likely
in a block without its patches as in one with them, and so does a garbage collection its objects
bring about: what is measured is close to the cost the patched calls add on the caller's thread.
With long blocks (``calls`` in the hundreds or more) that work lands mostly in the contender's
own blocks, as in a loop that never waits: what is measured is then closer to its whole cost.
The export work is also counted by ``bench_instructions.py``. (Flushing after every block instead
made autotrace's rounds spread several times wider: its flush wakes its thread, which then
competes with the next block.)
"""

from __future__ import annotations

import asyncio
import inspect
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

#: (owner, attribute name, original value or ABSENT, patched value)
Patch = tuple[Any, str, Any, Any]
#: The original of an attribute the contender added (a patch on a subclass of the defining class).
ABSENT = object()


def snapshot(package: str) -> dict[tuple[str, str, str], Any]:
    """The attributes of every module of ``package`` and of every class defined there."""
    found: dict[tuple[str, str, str], Any] = {}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == package or name.startswith(package + ".")):
            continue
        for attribute, value in list(vars(module).items()):
            found[(name, "", attribute)] = value
            if inspect.isclass(value) and value.__module__ == name:
                for member, member_value in list(vars(value).items()):
                    found[(name, attribute, member)] = member_value
    return found


def patches(before: dict[tuple[str, str, str], Any], package: str) -> list[Patch]:
    """The callables added or replaced since ``before`` (a cache or a counter is not a patch)."""
    changed: dict[tuple[int, str], Patch] = {}  # a class re-exported by another module is seen twice
    for key, value in snapshot(package).items():
        module_name, class_name, attribute = key
        original = before.get(key, ABSENT)
        if original is value or not callable(value):
            continue
        if original is ABSENT and (not class_name or (module_name, "", class_name) not in before):
            continue  # a name in a module or class loaded since: not a patch of what was there
        owner = sys.modules[module_name]
        if class_name:
            owner = getattr(owner, class_name)
        changed[(id(owner), attribute)] = (owner, attribute, original, value)
    return list(changed.values())


def switch(found: list[Patch], on: bool) -> None:
    """Put the patched callables in place (``on``) or the originals back (an added one is removed)."""
    for owner, attribute, original, patched in found:
        if on:
            setattr(owner, attribute, patched)
        elif original is ABSENT:
            if attribute in vars(owner):
                delattr(owner, attribute)
        else:
            setattr(owner, attribute, original)


def _block(fn: Callable[[], Any], calls: int, is_async: bool, loop: asyncio.AbstractEventLoop | None) -> float:
    """µs per call over ``calls`` calls, after two untimed ones."""
    if is_async:
        assert loop is not None

        async def run() -> float:
            await fn()
            await fn()
            start = time.perf_counter()
            for _ in range(calls):
                await fn()
            return (time.perf_counter() - start) / calls * 1e6

        return loop.run_until_complete(run())
    fn()
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def added(found: list[Patch], fn: Callable[[], Any], rounds: int, calls: int, seed: int = 7,
          warmup: int = 50) -> dict[str, float]:
    """The median added µs per call over ``rounds`` paired blocks (after ``warmup`` calls with the
    patches on), its quartiles, and the median µs per call with the patches off; the patches are
    left on."""
    try:
        return compare({"on": found}, fn, rounds, calls, seed, warmup)["on"]
    finally:
        switch(found, True)


def compare(contenders: dict[str, list[Patch]], fn: Callable[[], Any], rounds: int, calls: int, seed: int = 7,
            warmup: int = 50) -> dict[str, dict[str, float]]:
    """Several contenders instrumented in one interpreter, each with its patches found while the
    others' were off: a round times one block with no patches and one per contender with only its
    own in place, in a random order. Per contender: the median of the rounds' differences from the
    bare block, its quartiles, and the bare block's median. Every patch is off afterwards.

    The contenders are compared on the same memory layout of the instrumented package and in the
    same moments of the machine, instead of in interpreters run one after another."""
    is_async = inspect.iscoroutinefunction(fn)
    loop = asyncio.new_event_loop() if is_async else None
    order = random.Random(seed)
    states: list[str | None] = [None, *contenders]
    times: dict[str | None, list[float]] = {state: [] for state in states}
    try:
        for name in contenders:
            switch_only(contenders, name)
            _block(fn, warmup, is_async, loop)
        for _ in range(rounds):
            order.shuffle(states)
            for state in states:
                switch_only(contenders, state)
                times[state].append(_block(fn, calls, is_async, loop))
    finally:
        switch_only(contenders, None)
        if loop is not None:
            loop.close()
    bare = times[None]
    off = statistics.median(bare)
    result = {}
    for name in contenders:
        differences = [on - bare_time for on, bare_time in zip(times[name], bare, strict=True)]
        low, _, high = statistics.quantiles(differences, n=4)
        result[name] = {"added": statistics.median(differences), "q1": low, "q3": high, "off": off}
    return result


def switch_only(contenders: dict[str, list[Patch]], name: str | None) -> None:
    """Every contender's patches off, then ``name``'s on (two may have patched the same attribute)."""
    for found in contenders.values():
        switch(found, False)
    if name is not None:
        switch(contenders[name], True)
