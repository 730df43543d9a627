"""A provider autotrace made global and paused by ``uninstall()`` must record again once the
application adds a processor of its own to it (it cannot set another global provider: OpenTelemetry
sets one per process, so an application configuring tracing after ``uninstall()`` adds its
processors to autotrace's). Run in a fresh interpreter: the global provider is set once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import isolated_env

_ADDED_AFTER_UNINSTALL = """
import json, sys
import autotrace
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=(), export_interval=0.05)
early = trace.get_tracer("app.early")  # a tracer the application got while autotrace was installed
autotrace.uninstall()
exporter = InMemorySpanExporter()
trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
with trace.get_tracer("app.late").start_as_current_span("late") as late:
    late_recording = late.is_recording()
with early.start_as_current_span("early") as span:
    early_recording = span.is_recording()
print(json.dumps({"late": late_recording, "early": early_recording,
                  "spans": sorted(s.name for s in exporter.get_finished_spans())}))
"""


def test_a_processor_the_application_adds_after_uninstall_records(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    done = subprocess.run([sys.executable, "-c", _ADDED_AFTER_UNINSTALL, str(tmp_path / "t.db")],
                          capture_output=True, text=True, env={**env, "AUTOTRACE_HOME": str(tmp_path / "home")},
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"late": True, "early": True, "spans": ["early", "late"]}
