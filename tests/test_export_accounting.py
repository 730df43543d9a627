"""Every span goes to its own tenant's Langfuse or is counted as dropped, once: where a span's
tenant entry was evicted or its install uninstalled, a fork while another thread counts, spans
parked for a credentials lookup, a shutdown past its deadline (a batch settling, a span being
redacted), and a scores API failing after the batch's spans were taken. Real loopback receivers."""

from __future__ import annotations

import base64
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import autotrace
from autotrace import _internal
from autotrace.export import pipeline as pipeline_module
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver


@pytest.fixture
def default_rx() -> Iterator[OtlpReceiver]:
    """The default project's Langfuse (``unknown_tenant="default"``)."""
    with OtlpReceiver() as receiver:
        yield receiver


def _install(rx: OtlpReceiver, **options: Any) -> None:
    """Tenants ``a`` and ``b`` exporting to ``rx``; options may add the default project's."""
    options.setdefault("credentials", {tenant: Credentials(f"pk-{tenant}", f"sk-{tenant}", host=rx.endpoint)
                                       for tenant in ("a", "b")})
    autotrace.install(langfuse_host="http://127.0.0.1:9", export_interval=0.05, integrations=(), local_store="off",
                      **options)


def _dropped() -> dict[str, int]:
    return {k: v for k, v in autotrace.stats().items() if k.startswith(("spans_dropped", "scores_dropped"))}


def test_a_span_whose_tenant_entry_was_evicted_still_goes_to_its_tenant(
        rx: OtlpReceiver, default_rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past twice the live spans remembered (leaked spans: streams never closed), an evicted span
    was forgotten and ended with no tenant: ``unknown_tenant="default"`` sent it to the default project."""
    monkeypatch.setattr(pipeline_module, "MAX_LIVE_SPANS", 50)  # with queue_size=10: 50 live spans remembered
    autotrace.install(langfuse_host=default_rx.endpoint, public_key="pk-default", secret_key="sk-default",
                      unknown_tenant="default", export_interval=0.05, integrations=(), local_store="off", queue_size=10,
                      credentials={t: Credentials(f"pk-{t}", f"sk-{t}", host=rx.endpoint) for t in ("a", "b")})
    with autotrace.tenant("a"):
        private = autotrace.start_span("tenant-a-private")
    with autotrace.tenant("b"):
        leaked = [autotrace.start_span(f"open-{i}") for i in range(101)]
    private.end()
    assert autotrace.flush(10)
    assert [(s.name, s.headers["authorization"]) for s in rx.wait_for_spans(1)] == [
        ("tenant-a-private", "Basic " + base64.b64encode(b"pk-a:sk-a").decode())]
    assert default_rx.spans == [] and autotrace.stats()["tenant_spans_evicted"] > 50
    del leaked


def test_a_span_open_across_uninstall_and_install_goes_to_its_tenant(rx: OtlpReceiver, default_rx: OtlpReceiver) -> None:
    def install() -> None:
        autotrace.install(langfuse_host=default_rx.endpoint, public_key="pk-default", secret_key="sk-default",
                          unknown_tenant="default", export_interval=0.05, integrations=(), local_store="off",
                          credentials={"a": Credentials("pk-a", "sk-a", host=rx.endpoint)})

    install()
    with autotrace.tenant("a"), autotrace.start_span("tenant-a-request") as span:
        span.set_output("tenant A's private data")
        autotrace.uninstall()  # reconfigured as uninstall, then install
        install()
    assert autotrace.flush(10)
    assert [s.name for s in rx.wait_for_spans(1)] == ["tenant-a-request"]
    assert default_rx.spans == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here")
def test_a_fork_while_another_thread_counts_leaves_the_child_able_to_count(rx: OtlpReceiver) -> None:
    """The counters' lock, held by another thread at the fork (a metrics endpoint reading
    ``stats()``), was held for good in the child: its first count hung."""
    _install(rx)
    holding, release = threading.Event(), threading.Event()

    def hold_the_counters() -> None:
        with _internal._lock:  # as inside count() or stats()
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold_the_counters)
    holder.start()
    assert holding.wait(5)
    threading.Timer(0.2, release.set).start()  # the fork waits for it
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # not the test runner's handler: this process ends
        signal.alarm(5)  # a child stuck for good ends here
        autotrace.stats()
        with autotrace.tenant("a"), autotrace.start_span("in-the-child"):
            pass
        os._exit(0 if autotrace.flush(3) else 1)
    _, status = os.waitpid(pid, 0)
    holder.join(5)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [s.name for s in rx.wait_for_spans(1)] == ["in-the-child"]


def test_spans_parked_for_a_credentials_lookup_are_charged_to_the_budget_once(rx: OtlpReceiver) -> None:
    release = threading.Event()

    class SlowSecretStore:
        def resolve(self, tenant: str) -> Credentials:
            release.wait(5)
            return Credentials("pk-t", "sk-t", host=rx.endpoint)

    _install(rx, credentials=SlowSecretStore(), max_buffered_spans=100)
    with autotrace.tenant("t"):
        for i in range(60):  # well within the budget
            with autotrace.start_span(f"s{i}"):
                pass
    time.sleep(0.3)  # all parked while the lookup runs
    release.set()
    assert autotrace.flush(10)
    assert len(rx.wait_for_spans(60)) == 60 and _dropped() == {}


class _SlowLog(logging.Handler):
    """A log shipper, or a blocked stderr pipe: each warning takes a while."""

    def emit(self, record: logging.LogRecord) -> None:
        time.sleep(0.6)


def test_a_batch_settling_when_shutdown_gives_up_is_counted_once(rx: OtlpReceiver) -> None:
    rx.fail_with(503)  # kept for a retry, then its warning is logged: shutdown's deadline falls in between
    handler = _SlowLog()
    logging.getLogger("autotrace").addHandler(handler)
    try:
        _install(rx)
        with autotrace.tenant("a"):
            for i in range(5):
                with autotrace.start_span(f"s{i}"):
                    pass
        autotrace.uninstall(timeout=0.3)
        time.sleep(1.0)  # the warning is out, the batch no longer in flight
    finally:
        logging.getLogger("autotrace").removeHandler(handler)
    assert _dropped() == {"spans_dropped.shutdown": 5}


def test_a_span_being_redacted_when_shutdown_gives_up_is_counted(rx: OtlpReceiver) -> None:
    def slow_hook(key: str, value: Any, span_type: str) -> Any:
        if value == "slow":  # a hook asking a remote PII service
            time.sleep(1.0)
        return value

    _install(rx, redact=slow_hook)
    with autotrace.tenant("a"):
        with autotrace.start_span("slow"):
            pass
        time.sleep(0.2)  # the pipeline thread is in the hook now
        for i in range(3):
            with autotrace.start_span(f"fast-{i}"):
                pass
    autotrace.uninstall(timeout=0.3)
    time.sleep(1.5)  # the hook has returned: the span it held went nowhere
    assert rx.spans == [] and _dropped() == {"spans_dropped.shutdown": 4}


def test_spans_taken_before_the_scores_api_failed_are_exported_once_and_only_the_score_retried(
        rx: OtlpReceiver) -> None:
    """The scores API answering 503 made the whole batch's outcome a failure: its spans, already
    taken, were sent again at each retry and then counted as dropped."""
    rx.fail_scores_with(503)
    _install(rx, max_retries=1)
    with autotrace.tenant("a"):
        for i in range(3):
            with autotrace.start_span(f"s{i}"):
                if i == 0:
                    autotrace.score("quality", 0.9)
    deadline = time.monotonic() + 10
    while "scores_dropped.export_failed" not in autotrace.stats() and time.monotonic() < deadline:
        time.sleep(0.05)  # one retry after a backoff of up to 0.5 s
    stats = autotrace.stats()
    assert len(rx.spans) == 3 and len([r for r in rx.requests if r.span_count]) == 1
    assert (stats["spans_exported"], stats["export_failures"]) == (3, 2)
    assert _dropped() == {"scores_dropped.export_failed": 1}
    rx.fail_scores_with(None)
    with autotrace.tenant("a"), autotrace.start_span("later"):
        autotrace.score("quality", 1.0)
    assert autotrace.flush(10) and len(rx.scores) == 1
