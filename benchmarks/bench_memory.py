"""Memory over many traced calls: RSS after warm-up and after 100,000 traced OpenAI-shaped calls
(manual generations with messages, full pipeline, local store off).

    python benchmarks/bench_memory.py [--calls 100000]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness
import autotrace


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def calls(n: int) -> None:
    for i in range(n):
        with autotrace.tenant(f"t{i % 50}"), autotrace.start_generation("llm", model="gpt-4o-mini",
                                                                          input=[{"role": "user", "content": "hi"}]) as g:
            g.update(output={"role": "assistant", "content": "hello"}, usage={"input": 3, "output": 1, "total": 4})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    autotrace.install(local_store="off", integrations=())
    calls(10_000)
    autotrace.flush(60)
    gc.collect()
    before = rss_mb()
    calls(args.calls)
    autotrace.flush(120)
    gc.collect()
    after = rss_mb()
    print(f"memory ({_harness.machine()}): RSS {before:.1f} MB after warm-up, {after:.1f} MB after "
          f"{args.calls:,} more traced calls ({(after - before) / before * 100:+.1f}%)")


if __name__ == "__main__":
    main()
