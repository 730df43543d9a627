"""Review 18: a span of another library (a plain OpenTelemetry tracer) whose attribute for a column
(level, model) is a list. SQLite cannot bind a sequence, so the whole batch failed, was retried with
backoff and dropped: autotrace's own spans in it were lost with the odd one. The real OpenTelemetry
SDK, the real export pipeline, the CLI reading the store."""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry import trace

import autotrace
from tests.helpers import autotrace_cli, isolated_env


def test_a_list_in_a_column_attribute_keeps_its_batch(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=())
    with autotrace.start_generation("ours", model="gpt-4o"):
        pass
    with trace.get_tracer("another.library").start_as_current_span("theirs") as span:
        span.set_attribute("langfuse.observation.level", ["ERROR"])
        span.set_attribute("gen_ai.request.model", ("m1", "m2"))
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")
    with autotrace.start_span("text" + bad):
        pass
    assert autotrace.flush(30.0)
    stats = autotrace.stats()
    assert {name: stats[name] for name in stats if "export" in name or "local_store" in name} == {
        "spans_exported": 3, "spans_exported.local": 3, "local_store.invalid_text": 1}
    done = autotrace_cli(isolated_env(tmp_path), tmp_path, "--db", str(path), "query", "has name", "--json")
    assert done.returncode == 0, done.stderr
    found = sorted((o["name"], o["level"], o["model"]) for o in json.loads(done.stdout))
    assert found == [("ours", "DEFAULT", "gpt-4o"), ("textcaf\ufffd", "DEFAULT", None),
                     ("theirs", ["ERROR"], ["m1", "m2"])]
