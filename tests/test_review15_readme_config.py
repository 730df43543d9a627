"""README's Configuration table, checked against ``load_settings`` (review 15)."""

from __future__ import annotations

import pytest

from autotrace.config import ConfigError, load_settings


@pytest.mark.parametrize("raw", ["all", "true", "grpc.health.v1.Health/*", "t.Orders/Get, /a.B/*"])
def test_an_untraced_method_pattern_that_can_match_no_call_is_refused(raw: str) -> None:
    """Full method names start with ``/``: ``all`` (read as a pattern) or a pattern without the
    leading slash would leave every call traced without a word; it is a ``ConfigError`` instead."""
    with pytest.raises(ConfigError, match=r"grpc_untraced_methods.*matches no call.*AUTOTRACE_GRPC_UNTRACED_METHODS"):
        load_settings(env={"AUTOTRACE_GRPC_UNTRACED_METHODS": raw})
    with pytest.raises(ConfigError, match=r"grpc_untraced_methods.*matches no call"):
        load_settings({"grpc_untraced_methods": raw.split(",")}, env={})


@pytest.mark.parametrize(("raw", "expected"), [
    ("/a.B/*, *Health/Check", ("/a.B/*", "*Health/Check")), ("?grpc.reflection.*", ("?grpc.reflection.*",)),
    ("none", ()),
])
def test_patterns_that_can_match_are_kept(raw: str, expected: tuple[str, ...]) -> None:
    assert load_settings(env={"AUTOTRACE_GRPC_UNTRACED_METHODS": raw}).grpc_untraced_methods == expected
