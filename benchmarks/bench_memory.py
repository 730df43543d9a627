"""Memory over many traced calls: RSS after warm-up and after 100,000 more OpenAI calls through the
real SDK (an in-process mock transport), taken in turns: sync chat, a 20-chunk stream (usage asked
for and cut from the bytes) and async chat, over 50 tenants, with the whole pipeline and the local
store off.

    python benchmarks/bench_memory.py [--calls 100000]     # about 2 minutes
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness
import autotrace
import bench_openai


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_calls(n: int, loop: asyncio.AbstractEventLoop) -> Callable[[int], None]:
    """``run(start)``: ``n`` calls in turns of sync, stream and async, each turn under its own tenant."""
    call: dict[str, Any] = bench_openai.calls("autotrace")
    kinds = (call["sync"], call["stream20"], lambda: loop.run_until_complete(call["async"]()))

    def run(start: int) -> None:
        for i in range(start, start + n):
            with autotrace.tenant(f"t{i // 3 % 50}"):
                kinds[i % 3]()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    bench_openai.setup("autotrace")
    loop = asyncio.new_event_loop()
    make_calls(10_000, loop)(0)
    autotrace.flush(60)
    gc.collect()
    before, traced_before = rss_mb(), autotrace.stats().get("spans_dropped.no_destination", 0)
    make_calls(args.calls, loop)(10_000)
    autotrace.flush(120)
    gc.collect()
    after, traced = rss_mb(), autotrace.stats().get("spans_dropped.no_destination", 0) - traced_before
    print(f"memory ({_harness.machine()}): RSS {before:.1f} MB after warm-up, {after:.1f} MB after "
          f"{args.calls:,} more traced OpenAI calls ({(after - before) / before * 100:+.1f}%); "
          f"{traced:,} spans went through the whole pipeline")


if __name__ == "__main__":
    main()
