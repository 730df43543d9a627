"""A Ctrl-C on the main thread while it does the export work at interpreter exit (Python 3.12 starts
no thread there, so the flush drains on the main thread and runs the redaction hooks) ends that
export: the interrupted span is counted once, and no "internal error ...; tracing continues" is
counted or logged for it. Before, the span was counted dropped twice (redaction_failed and
pipeline_error) and three internal errors were counted and logged, one per layer it went through.
A ``KeyboardInterrupt`` raised on an export worker (user code's) is that code's failure, as any
other: ``test_review20_export_base_exceptions``."""

from __future__ import annotations

import importlib
import logging
import threading
from pathlib import Path
from typing import Any

import pytest

import autotrace


def test_ctrl_c_in_a_redaction_hook_at_exit_counts_its_span_once_and_no_internal_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def hook(key: str, value: Any, span_type: str) -> Any:
        if value == "interrupted":
            raise KeyboardInterrupt  # the user's Ctrl-C, landing while the hook runs
        return value

    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), redact=[hook])
    start = threading.Thread.start

    def refused(thread: threading.Thread) -> Any:  # as Python 3.12 does at interpreter exit
        if thread.name.startswith("autotrace"):
            raise RuntimeError("can't create new thread at interpreter shutdown")
        return start(thread)

    monkeypatch.setattr(threading.Thread, "start", refused)
    with autotrace.start_span("at-exit") as span:
        span.set_output("interrupted")
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        importlib.import_module("autotrace.install")._at_exit()
    stats = autotrace.stats()
    assert {k: v for k, v in stats.items() if k.startswith(("internal_errors", "spans_dropped", "exit_"))} == {
        "spans_dropped.redaction_failed": 1, "exit_export_interrupted": 1}
    assert [r.getMessage() for r in caplog.records if "internal error" in r.getMessage()] == []
