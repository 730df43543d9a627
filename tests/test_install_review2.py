"""Install lifecycle, reviewed: after ``uninstall()`` nothing of autotrace records or injects, the
OpenTelemetry spans other libraries start (the MCP SDK's own) included, while an application's own
provider and processors are left as they were. Run in fresh interpreters: the global tracer
provider can be set only once per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

_MCP_AFTER_UNINSTALL = """
import json, sys
import autotrace
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from mcp.shared._otel import inject_trace_context, otel_span

def probe():
    with otel_span("tools/call", kind=SpanKind.CLIENT) as span:
        meta = {}
        inject_trace_context(meta)
        return [span.is_recording(), sorted(meta)]

report = {"before": probe()}
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=(), export_interval=0.05)
report["installed"] = probe()
autotrace.uninstall()
report["uninstalled"] = probe()
with autotrace.start_span("after-uninstall"):
    report["autotrace_after_uninstall"] = trace.get_current_span().is_recording()
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=(), export_interval=0.05)
report["reinstalled"] = probe()
with autotrace.start_span("reinstalled"):
    pass
autotrace.flush(5)
if sys.argv[2] == "own-processor":  # the application adds its own processor to the provider autotrace made
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))
    autotrace.uninstall()
    report["own_processor"] = probe()
    report["own_processor_spans"] = [s.name for s in exporter.get_finished_spans()]
print(json.dumps(report))
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return isolated_env(tmp_path)


def _mcp_report(tmp_path: Path, mode: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _MCP_AFTER_UNINSTALL, str(tmp_path / "t.db"), mode],
                          capture_output=True, text=True, env=_env(tmp_path), timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_after_uninstall_the_mcp_sdks_own_spans_record_nothing_and_inject_nothing(tmp_path: Path) -> None:
    """The provider autotrace made global stayed recording after ``uninstall()``: the MCP SDK's own
    spans were still recorded and injected ``traceparent`` (flags 03) into every request, as if
    traced. Now it is as before install, and a re-install turns it back on."""
    report = _mcp_report(tmp_path, "")
    assert report["before"] == [False, []]
    assert report["installed"] == [True, ["traceparent"]]
    assert report["uninstalled"] == [False, []]
    assert report["autotrace_after_uninstall"] is False
    assert report["reinstalled"] == [True, ["traceparent"]]
    stored = sorted(r["name"] for r in LocalStore(tmp_path / "t.db").observations())
    assert stored == ["reinstalled", "tools/call", "tools/call"]  # installed and re-installed only


def test_a_processor_the_application_added_keeps_its_spans_after_uninstall(tmp_path: Path) -> None:
    report = _mcp_report(tmp_path, "own-processor")
    assert report["own_processor"] == [True, ["traceparent"]]
    assert report["own_processor_spans"] == ["tools/call"]
