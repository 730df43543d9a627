"""Export under a hot loop: N OpenAI calls (in-process mock transport) in a tight loop with the
default queue, exported over OTLP to a loopback receiver running in its own process. Reports what
arrived, what was dropped (all drops are counted) and the drop rate.

    python benchmarks/bench_hot_loop.py [--calls 100000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness
import autotrace
import bench_openai
from autotrace.export.pipeline import BACKPRESSURE_PAUSE

_RECEIVER = """
import sys
from autotrace.testing.otlp_receiver import OtlpReceiver
with OtlpReceiver() as rx:
    print(rx.endpoint, flush=True)
    expected = int(sys.stdin.readline())
    print(len(rx.wait_for_spans(expected, timeout=120)), flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args()
    receiver = subprocess.Popen([sys.executable, "-c", _RECEIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
    assert receiver.stdout is not None and receiver.stdin is not None
    endpoint = receiver.stdout.readline().strip()
    client, _ = bench_openai._clients()
    bare = _harness.time_sync(lambda: client.chat.completions.create(model="gpt-4o-mini",
                                                                     messages=bench_openai.MESSAGES), 2_000, rounds=3)
    autotrace.install(langfuse_host=endpoint, public_key="pk-lf-hot", secret_key="sk-lf-hot",
                      unknown_tenant="default", integrations=("openai",))
    started = time.perf_counter()
    for _ in range(args.calls):
        client.chat.completions.create(model="gpt-4o-mini", messages=bench_openai.MESSAGES)
    loop = time.perf_counter() - started
    flushed = autotrace.flush(300)
    stats = autotrace.stats()
    autotrace.shutdown()
    receiver.stdin.write(f"{args.calls}\n")
    receiver.stdin.flush()
    received = int(receiver.stdout.readline())
    receiver.wait(timeout=60)
    dropped = sum(v for k, v in stats.items() if k.startswith("spans_dropped"))
    pauses = stats.get("backpressure_pauses", 0)
    print(f"hot loop ({_harness.machine()}): {args.calls:,} calls in {loop:.1f} s; flushed={flushed}; "
          f"received {received:,}; dropped {dropped:,} ({dropped / args.calls:.2%}); "
          f"received + dropped = {received + dropped:,}\n"
          f"  {loop / args.calls * 1e6:.0f} µs per call against {bare:.0f} bare; {pauses:,} backpressure pauses "
          f"({pauses * BACKPRESSURE_PAUSE / args.calls * 1e6:.0f} µs per call asleep while the export threads ran)")


if __name__ == "__main__":
    main()
