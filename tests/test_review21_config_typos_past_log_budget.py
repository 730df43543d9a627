"""A mistyped ``AUTOTRACE_*`` variable is counted once (docs/counters.md: "one per variable") also
once the log-once budget is used up: ``log_once`` then remembered no new key, so each
``load_settings`` (each ``install()``, an app factory's re-run with the same settings) counted every
typo again."""

from __future__ import annotations

import logging

import pytest

import autotrace
from autotrace import _internal
from autotrace.config import load_settings


def test_a_typo_is_counted_once_past_the_log_budget(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(_internal, "_MAX_LOG_KEYS", 3)
    for i in range(3):  # the budget used up by other warnings
        _internal.log_once(f"other:{i}", "autotrace: other warning %d", i)
    env = {"AUTOTRACE_CAPTURE_CONTNET": "false", "AUTOTRACE_SERVICE_NAM": "x"}
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        for _ in range(3):
            load_settings(env=env)
    assert autotrace.stats()["config_unknown_variables"] == 2
    assert [r.getMessage() for r in caplog.records] == [
        "autotrace: 3 different warnings logged; later new ones are not logged, only counted (autotrace.stats())"]


def test_past_the_log_budget_a_key_seen_before_is_not_new(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_internal, "_MAX_LOG_KEYS", 1)
    assert _internal.log_once("first", "autotrace: first") is True
    assert [_internal.log_once("later", "autotrace: later") for _ in range(3)] == [True, False, False]
    autotrace.reset_stats()  # zeroed: each is new again
    assert _internal.log_once("later", "autotrace: later") is True
