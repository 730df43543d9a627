"""Span-pipeline throughput: spans/s through serialisation, redaction and routing to 1,000 tenants
(each with its own destination and credentials), exported to one loopback OTLP receiver.

Also the process's CPU time per span (every thread's, the receiver's too: steadier than spans/s
on a shared machine) and the garbage collections of each generation during the run: garbage
in reference cycles made per span (a closure that refers to itself) shows there, and costs
collections over every queued span, without any function being called more often.

    python benchmarks/bench_pipeline.py [--spans 50000] [--tenants 1000]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness
import autotrace
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spans", type=int, default=50_000)
    parser.add_argument("--tenants", type=int, default=1_000)
    args = parser.parse_args()
    tenants = [f"t{i:04d}" for i in range(args.tenants)]
    with OtlpReceiver() as rx:
        credentials = {t: Credentials(f"pk-{t}", f"sk-{t}", host=rx.endpoint) for t in tenants}
        autotrace.install(langfuse_host=rx.endpoint, credentials=credentials, integrations=(),
                          max_tenants=args.tenants, queue_size=max(20_000, args.spans), export_workers=8)
        text = "Customer jane.doe@example.com asked about order 4111 1111 1111 1111 and a refund."
        collections = [generation["collections"] for generation in gc.get_stats()]
        cpu, started = time.process_time(), time.perf_counter()
        for i in range(args.spans):
            with autotrace.tenant(tenants[i % len(tenants)]), autotrace.start_generation(
                    "llm", model="gpt-4o-mini", input=[{"role": "user", "content": text}]) as gen:
                gen.update(output="ok", usage={"input": 30, "output": 2, "total": 32})
        produced = time.perf_counter() - started
        assert autotrace.flush(300)
        total = time.perf_counter() - started
        cpu = time.process_time() - cpu
        collections = [generation["collections"] - before for generation, before in zip(gc.get_stats(), collections, strict=True)]
        received = len(rx.wait_for_spans(args.spans, timeout=60))
        stats = autotrace.stats()
        autotrace.shutdown()
    print(f"span pipeline ({_harness.machine()})")
    print(f"  {args.spans} spans, {args.tenants} tenants: caller side {args.spans / produced:,.0f} spans/s "
          f"({produced / args.spans * 1e6:.1f} µs/span); end to end incl. redaction, routing and OTLP export "
          f"{args.spans / total:,.0f} spans/s; received {received}; dropped "
          f"{sum(v for k, v in stats.items() if k.startswith('spans_dropped'))}; "
          f"redactions {stats.get('redactions', 0)}")
    print(f"  CPU {cpu / args.spans * 1e6:.0f} µs/span (all threads); garbage collections by generation {collections}")


if __name__ == "__main__":
    main()
