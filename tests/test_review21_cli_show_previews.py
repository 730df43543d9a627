"""Review 21: ``show`` on real stores.

A span whose resource names its service with a list (OpenTelemetry takes a sequence as any attribute's
value) made ``show`` (and ``replay``'s side by side) end in a ``TypeError`` traceback: the services were
put in a set. And each input/output preview of 60 characters split the whole value into words first: a
trace whose generations carry megabytes of context spent seconds (and memory by the value's words) on
previews; a preview now reads only the start of a value it needs."""

from __future__ import annotations

import io
import re
import tracemalloc
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from autotrace import cli, render
from autotrace.export.local_sink import span_record
from autotrace.export.local_store import LocalStore


def _spans(service: object) -> list[dict[str, object]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("review21")
    with tracer.start_as_current_span("request"), tracer.start_as_current_span("step"):
        pass
    provider.shutdown()
    return [span_record(span) for span in exporter.get_finished_spans()]


def _main(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = cli.main(list(argv))
    return code, stdout.getvalue(), stderr.getvalue()


def test_a_service_named_by_a_list_is_shown(tmp_path: Path) -> None:
    db = tmp_path / "traces.db"
    records = _spans(["api", "worker"]) + _spans("other")  # two traces; the first of a list-named service
    assert records[0]["service"] == ("api", "worker")
    store = LocalStore(db)
    store.write(records)
    store.close()
    trace_id = records[0]["trace_id"]
    code, out, err = _main("--db", str(db), "show", trace_id, "--no-io")
    assert (code, err) == (0, "")
    assert [re.sub(r"  [0-9.]+ms", "", line.rsplit("  #", 1)[0]) for line in out.splitlines()] == [
        f"trace {trace_id}  tenant=-", "└─ [SPAN] request", "   └─ [SPAN] step"]  # durations vary
    shown = LocalStore(db, read_only=True).trace(trace_id)
    assert [r["service"] for r in shown] == [["api", "worker"]] * 2
    # a trace across two services, one named by a list: the change of service is shown with its name as JSON
    mixed = [{**shown[0], "service": "gateway"}, shown[1]]
    assert render.render_tree(mixed, io=False).splitlines()[1:] == [
        f"└─ [SPAN] request  {render.node_label(mixed[0]).split('  ', 2)[1]}  service=gateway  #{mixed[0]['id'][:8]}",
        f"   └─ [SPAN] step  {render.node_label(mixed[1]).split('  ', 2)[1]}  service=[\"api\", \"worker\"]  "
        f"#{mixed[1]['id'][:8]}"]


def test_a_preview_reads_only_the_start_of_a_large_input() -> None:
    context = "retrieved passage " * 200_000  # 3.6 MB of words, as a long conversation's input
    records = [{"trace_id": "a" * 32, "id": f"{i:016x}", "parent_id": None, "name": "answer", "type": "generation",
                "duration_ms": 1.0, "input": context, "output": context} for i in range(1, 4)]
    tracemalloc.start()
    try:
        tree = render.render_tree(records)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    preview = ("retrieved passage " * 4)[:59] + "…"
    assert tree.splitlines()[1:4] == [f"├─ [GEN] answer  1.0ms  #{'0' * 8}", f"│     in:  {preview}",
                                     f"│     out: {preview}"]
    assert peak < 1 << 20  # splitting the whole input into its words took ~40 MB
    assert render.short(context, 60) == preview and render.short("a \n\t b", 60) == "a b"
    assert render.short(" " * 10_000 + "end", 60) == "end"  # a start all whitespace: read further
