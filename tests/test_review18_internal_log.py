"""An internal error's log line names its type and where it was raised, never its message: a
message may quote the application's data (a ``KeyError`` its key, a validation error the value it
refused), and the log goes wherever the application's logs go."""

from __future__ import annotations

import logging

import pytest

from autotrace import _internal


def _look_up(table: dict[str, str], key: str) -> str:
    return table[key]


def test_an_internal_errors_log_line_names_its_type_and_place_not_its_message(
        caplog: pytest.LogCaptureFixture) -> None:
    _internal._logged.clear()
    caplog.set_level(logging.WARNING, logger="autotrace")
    try:
        _look_up({}, "alice@example.com")
    except KeyError as exc:
        _internal.guarded_failure("review18_lookup", exc)
    (line,) = [r.getMessage() for r in caplog.records if "review18_lookup" in r.getMessage()]
    assert line == ("autotrace: internal error in review18_lookup (KeyError raised at "
                    f"test_review18_internal_log.py:{_look_up.__code__.co_firstlineno + 1} in _look_up); tracing continues")
    assert "alice" not in line
    assert _internal.stats()["internal_errors.review18_lookup"] == 1


def test_an_error_never_raised_is_placed_nowhere() -> None:
    assert _internal.raised_at(ValueError("the value")) == "an unknown place"
