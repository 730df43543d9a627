"""Review 21: ``traces`` showed ``MAX(tenant)`` for a trace id several tenants' requests share (each request
with a remote parent is a local root, and takes its own tenant), so ``traces --tenant acme`` listed a row
labelled ``globex``, named after globex's request and summing globex's tokens. With ``--tenant`` a trace is
now that tenant's observations (and those of none); without, its tenants are listed. A tenant stored as
bytes is shown as its record holds it, as ``show`` shows it. A real traced program and real ``autotrace``
processes; then the store's own rows."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

TRACE = "cf95442d658422b276e4f7ef04cf3ac5"
PROGRAM = textwrap.dedent(f"""
    import autotrace
    from opentelemetry import context, trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
    autotrace.install()
    caller = SpanContext(trace_id=0x{TRACE}, span_id=0x1111, is_remote=True, trace_flags=TraceFlags(1))
    for tenant, tokens in (("acme", 10), ("globex", 500)):  # two requests carrying one trace id
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(caller)))
        try:
            with autotrace.tenant(tenant), autotrace.start_span(f"request-{{tenant}}"):
                with autotrace.start_generation("answer", model="m") as generation:
                    generation.update(usage={{"input": 1, "output": tokens - 1, "total": tokens}})
        finally:
            context.detach(token)
    autotrace.shutdown()
""")


def _traces(env: dict[str, str], *argv: str) -> list[dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "autotrace", "traces", "--json", *argv], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return [{k: s[k] for k in ("trace_id", "name", "tenant", "observations", "tokens")} for s in json.loads(done.stdout)]


def test_a_trace_id_two_tenants_share_is_listed_as_each_ones(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    subprocess.run([sys.executable, "-c", PROGRAM], env=env, timeout=60, check=True)
    assert _traces(env, "--tenant", "acme") == [
        {"trace_id": TRACE, "name": "request-acme", "tenant": "acme", "observations": 2, "tokens": 10}]
    assert _traces(env, "--tenant", "globex") == [
        {"trace_id": TRACE, "name": "request-globex", "tenant": "globex", "observations": 2, "tokens": 500}]
    assert _traces(env) == [
        {"trace_id": TRACE, "name": "request-acme", "tenant": "acme,globex", "observations": 4, "tokens": 510}]


def _record(trace_id: str, n: int, parent: int | None, tenant: Any, **fields: Any) -> dict[str, Any]:
    return {"type": "span", "tenant": tenant, "level": "DEFAULT", "status_message": None, "model": None,
            "input": None, "output": None, "usage": None, "cost": None, "metadata": {}, "trace_id": trace_id,
            "id": f"{n:016x}", "parent_id": None if parent is None else f"{parent:016x}", "name": f"span-{n}",
            "start_ns": 10**18 + n, "end_ns": 10**18 + n + 10, "service": "svc", "error": False, "events": [],
            "duration_ms": 0.0, **fields}


def test_rows_of_no_tenant_count_for_the_tenant_and_bytes_show_as_recorded(tmp_path: Path) -> None:
    """A root started before the tenant was known (none) is the tenant's trace's root; another tenant's
    rows are left out of its sums, errors and limit; a bytes tenant reads as ``show`` prints it."""
    a, b = "a" * 32, "b" * 32
    writer = LocalStore(tmp_path / "t.db", retention_days=100_000)
    writer.write([
        _record(a, 1, None, None), _record(a, 2, 1, "acme", usage={"total": 3}),
        _record(a, 3, None, "globex", usage={"total": 40}, level="ERROR", error=True, start_ns=1),
        _record(b, 4, None, b"acme", usage={"total": 7}),
    ])
    writer.close()
    store = LocalStore(tmp_path / "t.db", read_only=True)
    fields = ("trace_id", "name", "tenant", "observations", "tokens", "errors", "duration_ms")
    assert [{k: s[k] for k in fields} for s in store.traces(tenant="acme")] == [
        {"trace_id": a, "name": "span-1", "tenant": "acme", "observations": 2, "tokens": 3, "errors": 0,
         "duration_ms": 11e-6}]
    assert [{k: s[k] for k in fields} for s in store.traces(tenant="globex", limit=1)] == [
        {"trace_id": a, "name": "span-3", "tenant": "globex", "observations": 2, "tokens": 40, "errors": 1,
         "duration_ms": (10**18 + 11 - 1) / 1e6}]
    assert [(s["trace_id"], s["tenant"]) for s in store.traces()] == [(b, "b'acme'"), (a, "acme,globex")]
    assert [s["tenant"] for s in store.traces(limit=1)] == ["b'acme'"]
