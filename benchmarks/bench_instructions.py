"""Machine instructions each library adds to an OpenAI call: the work, counted by valgrind, which
does not move with the timing noise of a shared machine (the timed tables do, by ±15%).

Each contender runs in its own interpreter under ``valgrind --tool=cachegrind`` twice, with a small
and a larger number of calls after the same warm-up; the difference divided by the extra calls is
the cost of one call, start-up excluded. Every contender flushes its span pipeline before it exits,
so its export work (serialisation, redaction and routing for autotrace; the batch processor and a
no-op exporter for the OpenTelemetry-based ones) is counted too. After the warm-up the garbage
collector's heap is frozen, so its passes over what was loaded before (the same for everyone)
do not land in one run and not the other. ``PYTHONHASHSEED`` is fixed; two runs still differ by
a few hundredths of a million per stream (the span pipelines' threads are scheduled by the
clock), hence ``--repeat``; and counts of different code or environments move by up to 0.1
million with where objects land in memory (the bare SDK alone, with only ``PYTHONPATH``
changed: 21.65 against 21.80 million per stream). Instructions are not time: interpreted code
between the SDK's own steps runs with cold caches.

    python benchmarks/bench_instructions.py                 # needs valgrind; ~10 minutes on 2 cores
    python benchmarks/bench_instructions.py --contenders bare,autotrace --repeat 3
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness
import bench_openai

#: column -> (fewer calls, more calls): bench_openai.py's columns but async, which runs the same
#: instrumentation code as sync
COLUMNS = {"sync": (20, 120), "stream20": (10, 60), "stream20u": (10, 60)}
CONTENDERS = ["bare", "autotrace", "autotrace-no-stream-usage", "otel-contrib-openai-v2", "openinference",
              "openllmetry", "langfuse"]


def child(contender: str, column: str, calls: int) -> None:
    """Warm up, then make ``calls`` calls of ``column`` and flush (run under valgrind by the parent)."""
    bench_openai.setup(contender)
    call = bench_openai.calls(contender)[column]
    for _ in range(30):
        call()
    # The collector's passes over everything loaded so far (the SDK, the libraries: the same for
    # every contender, and as big as the application) are left out: they would otherwise come
    # whenever the pipeline threads' allocations tip a threshold, one more or less per run.
    gc.collect()
    gc.freeze()
    for _ in range(calls):
        call()
    if contender != "bare":
        bench_openai.flush(contender)


def instructions(contender: str, column: str, calls: int) -> int | None:
    command = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
               sys.executable, __file__, "--child", contender, column, str(calls)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRACE_", "LANGFUSE_", "OTEL_"))}
    result = subprocess.run(command, capture_output=True, text=True, env={**env, "PYTHONHASHSEED": "0"},
                            check=False, timeout=3600)
    found = re.search(r"I\s+refs:\s+([\d,]+)", result.stderr)
    if result.returncode != 0 or found is None:
        return None
    return int(found.group(1).replace(",", ""))


def per_call(contender: str, column: str, repeat: int = 1) -> float | None:
    """Instructions of one call: the median over ``repeat`` pairs of runs (the pipeline threads'
    scheduling still moves a pair by a few hundredths of a million per stream)."""
    fewer, more = COLUMNS[column]
    values = []
    for _ in range(repeat):
        low, high = instructions(contender, column, fewer), instructions(contender, column, more)
        if low is None or high is None:
            return None
        values.append((high - low) / (more - fewer))
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=3, metavar=("CONTENDER", "COLUMN", "CALLS"))
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--repeat", type=int, default=1, help="pairs of runs per cell; the median is shown")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: this benchmark counts instructions with it")
    names = args.contenders.split(",")
    jobs = [(name, column) for name in names for column in COLUMNS]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # one valgrind per core
        counts = dict(zip(jobs, pool.map(lambda job: per_call(*job, args.repeat), jobs), strict=True))
    print(f"instructions per OpenAI call, millions ({_harness.machine()})")
    print(f"{'contender':<26}" + "".join(f"{column:>12}{'added':>10}" for column in COLUMNS))
    for name in names:
        cells = ""
        for column in COLUMNS:
            value, base = counts[(name, column)], counts.get(("bare", column))
            if value is None:
                cells += f"{'failed':>12}{'':>10}"
                continue
            added = f"{(value - base) / 1e6:+.3f}" if base is not None else ""
            cells += f"{value / 1e6:>12.3f}{added:>10}"
        print(f"{name:<26}{cells}")
    ours, others = "autotrace", [name for name in names if name != "bare" and not name.startswith("autotrace")]
    for column in COLUMNS:
        base = counts.get(("bare", column))
        added = {name: counts[(name, column)] - base for name in [ours, *others]  # type: ignore[operator]
                 if base is not None and counts.get((name, column)) is not None}
        rivals = [name for name in others if name in added]
        if ours in added and rivals:
            fewest = min(rivals, key=added.__getitem__)
            print(f"{column}: autotrace adds {added[ours] / added[fewest]:.2f}x the instructions of {fewest}")


if __name__ == "__main__":
    main()
