"""Every mistyped ``AUTOTRACE_*`` variable is counted once (docs/counters.md: "one per variable"),
however many there are; only the first 20 are said. Before, only the 20 said were counted: an
environment of 25 typos counted 20."""

from __future__ import annotations

import logging

import pytest

import autotrace
from autotrace.config import load_settings


def test_each_unknown_variable_is_counted_once_past_the_twenty_said(caplog: pytest.LogCaptureFixture) -> None:
    env = {f"AUTOTRACE_QQQ_{i:02d}": "1" for i in range(25)}
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        load_settings(env=env)
        load_settings(env=env)
    assert [r.getMessage() for r in caplog.records] == [
        f"autotrace: AUTOTRACE_QQQ_{i:02d} is not a setting autotrace reads" for i in range(20)]
    assert autotrace.stats()["config_unknown_variables"] == 25
