"""A tenant whose destination gave its place to another tenant (``max_tenants``) while a key rotation
revoked its keys: the retired destination's batch, refused (401), waited for new keys that were never
looked up (only the tenant's destination in place asked for them), then went again with the revoked
keys and was dropped. Now a refused batch of a retired destination has the keys looked up at once
too, and goes with the rotated ones."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

import autotrace
import autotrace.export.destination as destination_module
from autotrace.config import load_settings
from autotrace.export.credentials import Credentials, coerce_resolver
from autotrace.export.router import Router
from autotrace.export.workers import WorkerPool
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import basic_auth
from tests.test_router_review3_budget import looked_up


def _span(name: str) -> Any:
    span = TracerProvider().get_tracer("t").start_span(name)
    span.end()
    return span


def test_a_retired_destinations_refused_batch_goes_with_the_rotated_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(destination_module, "_KEYS_WAIT", 1000.0)  # only new keys can send it again
    with OtlpReceiver() as acme, OtlpReceiver() as globex:
        keys = {"acme": ("pk-old", "sk-old", acme.endpoint), "globex": ("pk-g", "sk-g", globex.endpoint)}
        settings = load_settings({"langfuse_host": "http://127.0.0.1:9", "max_tenants": 1,
                                  "export_interval": 0.01}, env={})
        router = Router(settings, coerce_resolver(lambda tenant: Credentials(*keys[tenant])), None, WorkerPool(2))
        try:
            router.route("acme", _span("of acme"))
            looked_up(router, "acme")
            keys["acme"] = ("pk-new", "sk-new", acme.endpoint)  # rotated in the secret store, the old revoked
            acme.require_auth(basic_auth("pk-new", "sk-new"))
            router.route("globex", _span("of globex"))  # takes acme's place: acme's destination retires
            looked_up(router, "globex")
            assert [tenant for tenant, _ in router._retired] == ["acme"]
            deadline = time.monotonic() + 10
            while not acme.spans and time.monotonic() < deadline:
                router.dispatch()
                time.sleep(0.01)
            assert [(s.name, s.headers["authorization"]) for s in acme.spans] == [
                ("of acme", basic_auth("pk-new", "sk-new"))]
            assert [s.name for s in globex.wait_for_spans(1)] == ["of globex"]
        finally:
            router.close()
    stats = autotrace.stats()
    assert (stats["spans_exported.langfuse:acme"], stats["export_failures.langfuse:acme"]) == (1, 1)
    assert not {k: v for k, v in stats.items() if k.startswith("spans_dropped.")}
