"""Start-up cost: ``import`` + set-up of each library, in a fresh interpreter each, best of 5.

    python benchmarks/bench_startup.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness

SNIPPETS = {
    "python (baseline)": "pass",
    "autotrace": "import autotrace; autotrace.install(local_store='off')",
    "otel sdk + batch processor": (
        "from opentelemetry import trace; from opentelemetry.sdk.trace import TracerProvider;"
        "from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter;"
        "p = TracerProvider(); p.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()));"
        "trace.set_tracer_provider(p)"),
    "openinference (openai)": (
        "from opentelemetry.sdk.trace import TracerProvider; from openinference.instrumentation.openai import "
        "OpenAIInstrumentor; OpenAIInstrumentor().instrument(tracer_provider=TracerProvider())"),
    "openllmetry (openai)": (
        "from opentelemetry.sdk.trace import TracerProvider; from opentelemetry.instrumentation.openai import "
        "OpenAIInstrumentor; OpenAIInstrumentor().instrument(tracer_provider=TracerProvider())"),
    "otel contrib (openai-v2)": (
        "from opentelemetry.sdk.trace import TracerProvider; from opentelemetry.instrumentation.openai_v2 import "
        "OpenAIInstrumentor; OpenAIInstrumentor().instrument(tracer_provider=TracerProvider())"),
    "langfuse": "from langfuse import Langfuse; Langfuse(public_key='pk', secret_key='sk', base_url='http://127.0.0.1:9')",
}


def measure(code: str) -> float | None:
    timer = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
    samples = []
    for _ in range(5):
        result = subprocess.run([sys.executable, "-c", timer], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return None
        samples.append(float(result.stdout.strip().splitlines()[-1]))
    return min(samples) * 1000


def main() -> None:
    print(f"import + set-up, ms, best of 5 ({_harness.machine()})")
    for name, code in SNIPPETS.items():
        value = measure(code)
        print(f"  {name:<28} {'not installed' if value is None else f'{value:8.1f} ms'}")


if __name__ == "__main__":
    main()
