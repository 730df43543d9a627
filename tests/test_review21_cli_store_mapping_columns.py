"""Review 21: OpenTelemetry (1.3x on) takes a mapping as an attribute's value, a resource's too. A span
whose level, tenant or model attribute, or whose resource's ``service.name``, was a dict failed its whole
batch in the local store (``ProgrammingError``: no column type takes a dict; a list was made its JSON
text, a dict was not), retried, and failed again: every span exported with it was never stored. Such a
value is now its column's JSON text, the record's own, so ``query`` finds by it what the record holds."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from autotrace import cli, schema
from autotrace.export.local_sink import LocalStoreSink
from autotrace.export.local_store import LocalStore
from autotrace.export.sink import OK


def _main(*argv: str) -> tuple[int, Any]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = cli.main(list(argv))
    assert stderr.getvalue() == ""
    return code, json.loads(stdout.getvalue())


def test_a_batch_with_mapping_attributes_is_stored_whole(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": {"name": "api", "zone": "eu"}}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("review21")
    with tracer.start_as_current_span("plain"):
        pass
    with tracer.start_as_current_span("odd", attributes={schema.OBS_LEVEL: {"severity": "high"},
                                                         schema.TENANT: {"org": "acme", "weight": float("nan")}}):
        pass
    provider.shutdown()
    db = tmp_path / "traces.db"
    sink = LocalStoreSink(LocalStore(db))
    assert sink.export(list(exporter.get_finished_spans())) == OK
    sink.close()

    code, found = _main("--db", str(db), "query", "tenant~acme", "--json")
    assert code == 0 and [(r["name"], r["level"], r["tenant"], r["service"]) for r in found] == [
        ("odd", {"severity": "high"}, {"org": "acme", "weight": None}, {"name": "api", "zone": "eu"})]
    # the columns hold the record's JSON: what the matcher reads, so SQL narrows nothing it would match
    code, found = _main("--db", str(db), "query", 'tenant="{\\"org\\": \\"acme\\", \\"weight\\": null}"', "--json")
    assert code == 0 and [r["name"] for r in found] == ["odd"]
    code, found = _main("--db", str(db), "query", "not tenant~nan", "--json")
    assert code == 0 and sorted(r["name"] for r in found) == ["odd", "plain"]
    code, listed = _main("--db", str(db), "traces", "--json")
    assert code == 0 and sorted(t["name"] for t in listed) == ["odd", "plain"]
