"""Where the interpreter refuses new threads (at exit on Python 3.12) a flush drains the pipeline on
its own thread. There the redaction hooks run as on the pipeline thread: the spans a hook opens are
left out (counted), not exported as tenantless spans fed back to the same hook, and a flush inside a
hook returns at once instead of waiting out its timeout for the drain that runs it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as otel_context

import autotrace
from tests.helpers import Traced

_SUPPRESSED = otel_context._SUPPRESS_INSTRUMENTATION_KEY


def _refuse_our_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """What Python 3.12 does at interpreter exit, for autotrace's threads only."""
    start = threading.Thread.start

    def refused(thread: threading.Thread) -> Any:
        if thread.name.startswith("autotrace"):
            raise RuntimeError("can't create new thread at interpreter shutdown")
        return start(thread)

    monkeypatch.setattr(threading.Thread, "start", refused)


def test_a_flush_that_drains_on_its_own_thread_runs_hooks_as_autotraces_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bool | None, bool]] = []

    def audit(key: str, value: Any, span_type: str) -> Any:
        if key == "span.name" and value == "checkout" and len(seen) < 3:
            with autotrace.tenant("other"), autotrace.start_span("audit"):
                flushed = autotrace.flush(2)  # (before: waited its 2 s for the drain running it, then False)
            seen.append((otel_context.get_value(_SUPPRESSED), flushed))
        return value

    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), redact=[audit])
    _refuse_our_threads(monkeypatch)
    with autotrace.tenant("acme"), autotrace.start_span("checkout"):
        pass
    assert autotrace.flush(5) is True
    assert autotrace.flush(5) is True  # (before: the hook's span, queued meanwhile, exported here)
    assert seen == [(True, False)]
    assert [(r["name"], r["tenant"]) for r in Traced(tmp_path / "t.db").records()] == [("checkout", "acme")]
    stats = autotrace.stats()
    assert (stats["spans_dropped.inside_export"], stats["spans_exported.local"]) == (1, 1)
    assert otel_context.get_value(_SUPPRESSED) is None  # the flushing thread is the application's again
    with autotrace.tenant("acme"), autotrace.start_span("later"):
        pass
    assert autotrace.flush(5) is True
    assert [r["name"] for r in Traced(tmp_path / "t.db").records()] == ["checkout", "later"]
