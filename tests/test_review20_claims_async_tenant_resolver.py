"""An ``async def`` given as ``tenant_resolver`` (easy to write in an async application) cannot
answer where a span starts: its coroutine is never awaited there. It is a failed lookup, as any
other answer that is no tenant id (``tenant_resolver_errors``), said once by name, and its
coroutine is closed, so the application's output gets no "coroutine ... was never awaited"
RuntimeWarning from autotrace at each span or score. An ``async def`` itself is refused at
``install()``, as an async ``credentials`` function is."""

from __future__ import annotations

import gc
import logging
import warnings

import pytest

import autotrace
from tests.helpers import Traced


async def _tenant_of_request() -> str:
    return "acme"


def test_an_async_tenant_resolver_is_refused_at_install(traced: Traced) -> None:
    with pytest.raises(autotrace.ConfigError, match=r"tenant_resolver.*not async"):
        autotrace.install(local_store="on", local_store_path=traced.path, integrations=(),
                          tenant_resolver=_tenant_of_request)


def test_a_tenant_resolver_answering_a_coroutine_is_a_failed_lookup_said_once_without_runtime_warnings(
        traced: Traced, caplog: pytest.LogCaptureFixture) -> None:
    autotrace.install(local_store="on", local_store_path=traced.path, integrations=(), export_interval=0.05,
                      tenant_resolver=lambda: _tenant_of_request())
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, logger="autotrace"):
        warnings.simplefilter("always")
        with autotrace.start_span("first"):
            pass
        with autotrace.start_span("second"):
            pass
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    assert autotrace.stats()["tenant_resolver_errors"] == 2
    said = [r.getMessage() for r in caplog.records if "tenant_resolver" in r.getMessage()]
    assert said == ["autotrace: tenant_resolver is an async function, which is never awaited where a span "
                    "starts; give a plain function returning a tenant id or None (counted as "
                    "tenant_resolver_errors)"]
    assert [(r["name"], r["tenant"]) for r in traced.records()] == [("first", None), ("second", None)]
