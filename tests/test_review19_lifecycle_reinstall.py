"""``install()`` called again with the settings already in force (an application factory, a
framework's start-up hook run once per app or per test): nothing to apply."""

from __future__ import annotations

import logging

import pytest

import autotrace
from autotrace.runtime import state
from autotrace.testing.otlp_receiver import OtlpReceiver


def test_an_install_with_the_settings_in_force_keeps_the_pipeline_and_its_unsent_spans(rx: OtlpReceiver) -> None:
    """It re-installed: the running pipeline was stopped, the caller waited up to 5 s for it while
    Langfuse failed, and the spans it still held were dropped (``spans_dropped.shutdown``). The
    install in force is kept, and its spans go once Langfuse answers again."""
    options = {"langfuse_host": rx.url, "public_key": "pk-lf-1", "secret_key": "sk-lf-1",
               "unknown_tenant": "default", "integrations": ["openai"], "export_interval": 0.05}
    first = autotrace.install(**options)
    pipeline = state.pipeline
    rx.fail_with(503)
    for name in ("a", "b"):
        with autotrace.start_span(name):
            pass
    again = autotrace.install(**options)
    rx.fail_with(None)
    assert autotrace.flush(10)
    dropped = {name: n for name, n in autotrace.stats().items() if name.startswith("spans_dropped")}
    assert (dropped, sorted(span.name for span in rx.wait_for_spans(2, timeout=3))) == ({}, ["a", "b"])
    assert (again is first, state.pipeline is pipeline) == (True, True)


def test_an_install_with_other_settings_applies_them_and_says_which_replace_those_in_force(
        rx: OtlpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    """Settings that differ re-install, as before; each call's settings replace the earlier ones
    whole (a later ``install(capture_content=False)`` leaves no Langfuse host it was not given), which
    went unsaid. Their names are logged, never their values."""
    options = {"langfuse_host": rx.url, "public_key": "pk-lf-1", "secret_key": "sk-lf-s3cret",
               "unknown_tenant": "default", "integrations": (), "export_interval": 0.05}
    autotrace.install(**options)
    pipeline = state.pipeline
    with caplog.at_level(logging.INFO, logger="autotrace"):
        settings = autotrace.install(capture_content=False, integrations=())
    assert (settings.capture_content, state.capture_content, state.pipeline is pipeline) == (False, False, False)
    said = [r.getMessage() for r in caplog.records if "install() again" in r.getMessage()]
    assert said == ["autotrace: install() again, with other settings: langfuse_host, public_key, secret_key, "
                    "unknown_tenant, capture_content, export_interval"]
    assert "s3cret" not in caplog.text
