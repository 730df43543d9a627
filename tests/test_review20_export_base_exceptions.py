"""An exception that is no ``Exception`` (asyncio's ``CancelledError``, gevent's ``Timeout``,
``SystemExit``) raised by the user code autotrace runs on its own threads, a redaction hook on the
pipeline thread or a credentials resolver on an export worker, is that code's failure, counted as
any other. Old code let it end the thread: with the pipeline thread gone (or every export worker)
nothing was exported again for any tenant, and every ``flush()`` said False, for the life of the
process. Real pipeline, real OTLP/HTTP to a loopback receiver."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.export.workers import WorkerPool
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_default_tenant


def test_a_redaction_hook_cancelled_drops_its_span_and_the_next_spans_are_exported(rx: OtlpReceiver) -> None:
    def hook(key: str, value: Any, span_type: str) -> Any:
        if value == "cancel me":
            raise asyncio.CancelledError
        return value

    install_default_tenant(rx, "hooks", redact=[hook])
    with autotrace.start_span("cancelled") as span:
        span.set_output("cancel me")
    with autotrace.start_span("after") as span:
        span.set_output("fine")
    assert autotrace.flush(5)
    assert [(s.name, s.attributes["langfuse.observation.output"]) for s in rx.spans] == [("after", "fine")]
    stats = autotrace.stats()
    assert (stats["spans_dropped.redaction_failed"], stats["internal_errors.redaction"]) == (1, 1)


def test_a_credentials_resolver_cancelled_fails_that_lookup_and_other_tenants_still_export(
        rx: OtlpReceiver) -> None:
    def resolve(tenant: str) -> Credentials:
        if tenant.startswith("cancelled"):
            raise asyncio.CancelledError
        return Credentials(f"pk-{tenant}", f"sk-{tenant}", host=rx.endpoint)

    autotrace.install(langfuse_host="http://127.0.0.1:9", export_interval=0.05, credentials=resolve,
                      integrations=(), export_workers=2)
    for tenant in ("cancelled-1", "cancelled-2", "cancelled-3"):  # more than there are export workers
        with autotrace.tenant(tenant), autotrace.start_span(f"of {tenant}"):
            pass
    assert autotrace.flush(5)
    with autotrace.tenant("acme"), autotrace.start_span("of acme"):
        pass
    assert autotrace.flush(5)
    assert [s.name for s in rx.spans] == ["of acme"]
    assert [r.headers["x-langfuse-public-key"] for r in rx.requests] == ["pk-acme"]
    stats = autotrace.stats()
    assert (stats["internal_errors.credentials"], stats["spans_dropped.credentials_failed"]) == (3, 3)


@pytest.mark.parametrize("error", [asyncio.CancelledError, KeyboardInterrupt])  # (no Ctrl-C reaches a worker)
def test_a_job_raising_a_base_exception_leaves_its_worker_running_the_next_job(error: type[BaseException]) -> None:
    pool = WorkerPool(1, max_size=1)
    ran = threading.Event()

    def cancelled() -> None:
        raise error

    pool.submit(cancelled)
    pool.submit(ran.set)
    try:
        assert ran.wait(5)
    finally:
        pool.stop(1.0)
    assert autotrace.stats()["internal_errors.worker"] == 1
