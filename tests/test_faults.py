"""Reliability under faults: fork, a tight loop against the bounded queue, hostile configuration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autotrace
from autotrace.config import _ENV, ConfigError, load_settings
from autotrace.testing.otlp_receiver import OtlpReceiver


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_worker_traces_with_fresh_threads() -> None:
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-f", secret_key="sk-lf-f",
                          unknown_tenant="default", integrations=(), export_interval=0.05)
        with autotrace.start_span("before-fork"):
            pass
        pid = os.fork()
        if pid == 0:  # gunicorn-style worker
            code = 1
            try:
                with autotrace.start_span("in-child"):
                    pass
                code = 0 if autotrace.flush(5) else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        with autotrace.start_span("parent-after-fork"):
            pass
        assert autotrace.flush(5)
        names = sorted(s.name for s in rx.wait_for_spans(3))
    assert names == ["before-fork", "in-child", "parent-after-fork"]


def test_tight_loop_drops_nothing_with_the_default_queue(tmp_path: Path) -> None:
    autotrace.install(local_store="off", integrations=())

    @autotrace.observe(as_type="tool")
    def step(i: int) -> int:
        return i

    for i in range(30_000):
        step(i)
    assert autotrace.flush(60)
    stats = autotrace.stats()
    assert stats["spans_dropped.no_destination"] == 30_000  # every span went all the way through
    assert not [k for k in stats if k.startswith("spans_dropped.") and k != "spans_dropped.no_destination"]


def test_a_tiny_queue_counts_every_drop(tmp_path: Path) -> None:
    autotrace.install(local_store="off", integrations=(), queue_size=64, max_export_batch=32)
    for i in range(3_000):
        with autotrace.start_span(f"s{i % 10}"):
            pass
    assert autotrace.flush(60)
    stats = autotrace.stats()
    assert stats.get("spans_dropped.queue_full", 0) + stats["spans_dropped.no_destination"] == 3_000
    assert stats["backpressure_pauses"] > 0  # the callers slowed down instead of only dropping


_ENV_NAMES = st.sampled_from(["AUTOTRACE_QUEUE_SIZE", "AUTOTRACE_CAPTURE_CONTENT", "AUTOTRACE_UNKNOWN_TENANT",
                              "LANGFUSE_HOST", "LANGFUSE_PUBLIC_KEY", "AUTOTRACE_RETENTION_DAYS",
                              "AUTOTRACE_INTEGRATIONS", "LANGFUSE_TRACING_ENVIRONMENT", "AUTOTRACE_LOCAL_STORE",
                              "AUTOTRACE_EXPORT_INTERVAL", "OTEL_SDK_DISABLED", "AUTOTRACE_MAX_VALUE_BYTES"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_ENV_NAMES, st.text(max_size=30), max_size=6))
def test_fuzzed_environment_gives_settings_or_a_config_error(env: dict[str, str]) -> None:
    try:
        load_settings(env=env)
    except ConfigError as exc:
        assert "setting" in str(exc)


def _outcome(build: Any) -> tuple[Any, ...]:
    try:
        return ("settings", build())
    except ConfigError:
        return ("error",)


_PIECES = st.sampled_from([" ", "\t", "\n", ",", "~", "a", "e", "l", "n", "o", "1", "0", ".", "-", "/", "true", "none",
                           "email", "local", "on", "1e3", "nan", "http://lf:3000"])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(_ENV)), st.lists(_PIECES, max_size=6).map("".join))
def test_fuzzed_keyword_strings_are_read_as_their_variable_would_be(name: str, text: str) -> None:
    """A keyword given as a string gives the settings (or the error) its variable gives: keywords were
    not stripped (a secret read from a file kept its newline) and a blank one was not 'no value'."""
    variable = _ENV[name][0][0]
    assert _outcome(lambda: load_settings({name: text}, env={})) == _outcome(lambda: load_settings(env={variable: text}))


def test_backpressure_can_be_switched_off(tmp_path: Path) -> None:
    autotrace.install(local_store="off", integrations=(), queue_size=64, max_export_batch=32, backpressure=False)
    for i in range(2_000):
        with autotrace.start_span(f"s{i % 10}"):
            pass
    assert autotrace.flush(60)
    stats = autotrace.stats()
    assert "backpressure_pauses" not in stats
    assert stats.get("spans_dropped.queue_full", 0) + stats["spans_dropped.no_destination"] == 2_000


def test_an_unusable_local_store_path_does_not_stop_install(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    autotrace.install(local_store="on", local_store_path=blocker / "traces.db", integrations=())
    with autotrace.start_span("still-traced") as span:
        span.set_output(1)
    assert autotrace.flush(5)
    stats = autotrace.stats()
    assert stats["local_store_unavailable"] == 1 and stats["spans_dropped.no_destination"] == 1


def test_past_the_log_cap_one_line_says_later_warnings_are_only_counted(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import autotrace._internal as internal

    monkeypatch.setattr(internal, "_MAX_LOG_KEYS", 3)
    caplog.set_level("WARNING", logger="autotrace")
    for tenant in ("a", "b", "c", "d", "e"):
        internal.log_once(f"drop:{tenant}", "export to %s failed", tenant)
    internal.log_once("drop:a", "export to %s failed", "a")
    internal.guarded_failure("redaction", ValueError("boom"))
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["export to a failed", "export to b failed", "export to c failed",
                        "autotrace: 3 different warnings logged; later new ones are not logged, only counted "
                        "(autotrace.stats())"]
    assert autotrace.stats()["internal_errors.redaction"] == 1
