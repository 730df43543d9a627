"""Tenant blocks in another tenant's scope where no span of autotrace's is current (review 15): a
worker task a request started before its first span, or under the caller's span the request came
with, serves another tenant's job; that job must carry none of the request's trace attributes
(user, session) and join none of its traces."""

from __future__ import annotations

import asyncio

from opentelemetry import context as otel_context

import autotrace
from autotrace.propagation import extract
from tests.helpers import Traced

_CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"


def test_a_worker_started_before_the_requests_first_span_keeps_its_attributes_from_other_tenants_jobs(
        traced: Traced) -> None:
    """acme's request (its user and session set, no span yet) starts the worker that serves every
    tenant: globex's job was recorded with acme's user id and session id, in globex's project."""
    jobs: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    async def worker() -> None:
        while True:
            tenant, name = await jobs.get()
            with autotrace.tenant(tenant), autotrace.start_span(name):
                pass
            jobs.task_done()

    async def main() -> None:
        with autotrace.tenant("acme"), autotrace.trace_attributes(user_id="alice@acme", session_id="acme-1"):
            task = asyncio.create_task(worker())
        await jobs.put(("globex", "globex-job"))
        await jobs.join()
        task.cancel()

    asyncio.run(main())
    record = traced.one()
    assert (record["name"], record["tenant"], record["user_id"], record["session_id"]) == (
        "globex-job", "globex", None, None)


def test_another_tenants_block_under_a_callers_span_starts_a_trace_of_its_own(traced: Traced) -> None:
    """acme's request came with its caller's trace context (no local span yet): globex's block
    there joined acme's caller's trace (its span a child of the caller's), as well as taking the
    request's trace attributes; acme's own block stays in it."""
    caller = extract({"traceparent": f"00-{_CALLER_TRACE}-b7ad6b7169203331-01"})
    token = otel_context.attach(caller)
    try:
        with autotrace.tenant("acme"), autotrace.trace_attributes(session_id="acme-1"):
            with autotrace.tenant("globex"), autotrace.start_span("theirs"):
                pass
            with autotrace.tenant("acme"), autotrace.start_span("ours"):
                pass
    finally:
        otel_context.detach(token)
    seen = {r["name"]: (r["tenant"], r["trace_id"] == _CALLER_TRACE, r["parent_id"], r["session_id"])
            for r in traced.records()}
    assert seen == {"theirs": ("globex", False, None, None),
                    "ours": ("acme", True, "b7ad6b7169203331", "acme-1")}
    assert autotrace.stats().get("tenant_new_trace") == 1
