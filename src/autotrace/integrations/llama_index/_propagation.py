"""The trace context a LlamaIndex workflow carries to the process that runs its steps.

A workflow runtime that runs steps elsewhere (another process, a durable worker) asks every span
handler for ``capture_propagation_context()`` where the run starts, serialises the dicts, and hands
them to ``restore_propagation_context()`` before the run's first span there. Ours is the W3C
``traceparent``/``tracestate`` and ``baggage`` (with the current tenant when ``tenant_baggage`` is
``all``, as for an MCP call: where the context goes is not known) under one key, ``autotrace``; restored, the steps' observations join the starting trace.

The tenant is taken from that baggage only as from any caller (``trust_incoming_tenant``, and no
tenant already in scope): a context read back from a runtime's store is outside input. A restore
where a trace is already current (the runtime ran the steps in the starting process, whose context
they inherit) changes nothing, and so does one outside an asyncio task (workflows run their steps
in tasks), whose context nothing would restore.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from ...context import set_tenant, trusted_incoming_tenant, without_tenant_baggage
from ...propagation import PROPAGATION_KEYS, extract, inject, tenant_travels_to

KEY = "autotrace"


def capture() -> dict[str, Any]:
    """The current trace context and tenant, under ``KEY`` (nothing when no trace is current)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    return {KEY: inject({}, send_tenant=tenant_travels_to(None))}


def restore(context: Mapping[str, Any]) -> None:
    """Attach the captured trace context (and, when trusted, tenant) in the current context: that
    of the step runner's asyncio task, discarded with it. Nothing when a trace is already current,
    nor outside a task: nothing would detach it, and a thread's later work would join that trace."""
    carried = context.get(KEY) if isinstance(context, Mapping) else None
    if not isinstance(carried, Mapping) or trace.get_current_span().get_span_context().is_valid:
        return
    try:
        if asyncio.current_task() is None:
            return
    except RuntimeError:  # no event loop in this thread
        return
    incoming = extract({key: value for key, value in carried.items() if key in PROPAGATION_KEYS})
    if not trace.get_current_span(incoming).get_span_context().is_valid:
        return
    tenant = trusted_incoming_tenant(incoming)
    otel_context.attach(without_tenant_baggage(incoming))
    if tenant is not None:
        set_tenant(tenant)
