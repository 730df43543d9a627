"""Critical review 18: a span of another library whose attribute for a text column (model, level)
is an integer beyond SQLite's 64 bits. Binding it raised OverflowError, which the store's fallback
(``storable``) did not catch: the whole batch failed, was retried and dropped, autotrace's own span
with it. The real OpenTelemetry SDK, the real pipeline, the CLI reading the store."""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry import trace

import autotrace
from tests.helpers import autotrace_cli, isolated_env


def test_a_huge_integer_in_a_column_attribute_keeps_its_batch(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=())
    with autotrace.start_generation("ours", model="gpt-4o"):
        pass
    with trace.get_tracer("another.library").start_as_current_span("theirs") as span:
        span.set_attribute("gen_ai.request.model", 2**64)
        span.set_attribute("langfuse.observation.level", -(2**70))
    assert autotrace.flush(30.0)
    stats = autotrace.stats()
    assert {name: stats[name] for name in stats if "export" in name or "local_store" in name} == {
        "spans_exported": 2, "spans_exported.local": 2}
    done = autotrace_cli(isolated_env(tmp_path), tmp_path, "--db", str(path), "query", "has name", "--json")
    assert done.returncode == 0, done.stderr
    found = sorted((o["name"], o["level"], o["model"]) for o in json.loads(done.stdout))
    assert found == [("ours", "DEFAULT", "gpt-4o"), ("theirs", -(2**70), 2**64)]
