"""Spans a redaction hook starts on autotrace's export threads are never exported, also when the
tracer provider has processors of the application's beside autotrace's (its spans are then the
SDK's, whose ``on_end`` gets a copy carrying no mark of ours): each went through the hook again, a
loop bounded only by the hook. Fresh interpreter: one global tracer provider per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import isolated_env

_SCRIPT = """
import json, sys, tempfile
from pathlib import Path
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import autotrace

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
if sys.argv[1] == "before":
    trace.set_tracer_provider(provider)
asked = []

def policy(key, value, span_type):
    if key == "span.name" and len(asked) < 5:
        asked.append(value)
        with autotrace.start_span(f"hook-{len(asked)}"):
            pass
    return value

store = Path(tempfile.mkdtemp()) / "t.db"
autotrace.install(local_store="on", local_store_path=store, integrations=(), export_interval=0.05, redact=[policy],
                  unknown_tenant="default")
if sys.argv[1] == "after":
    trace.set_tracer_provider(provider)  # joined to autotrace's
with autotrace.tenant("acme"), autotrace.start_span("checkout"):
    pass
autotrace.flush(5)
autotrace.flush(5)
names = sorted(row["name"] for row in autotrace.local_store().observations())
stats = autotrace.stats()
print(json.dumps({"asked": asked, "stored": names, "inside": stats.get("spans_dropped.inside_export"),
                  "app": sorted(span.name for span in exporter.get_finished_spans())}))
"""


@pytest.mark.parametrize("provider", ["before", "after"])
def test_a_hooks_spans_are_dropped_with_an_application_processor_beside_autotraces(tmp_path: Path,
                                                                                   provider: str) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, provider], capture_output=True, text=True, timeout=120,
                          env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["asked"] == ["checkout"]
    assert report["stored"] == ["checkout"]
    assert report["inside"] == 1
    # the application's own processor gets what it would without autotrace: the request's span (a
    # provider set before install() also sees the hook's, recorded on its own provider as usual)
    assert report["app"] == (["checkout", "hook-1"] if provider == "before" else ["checkout"])
