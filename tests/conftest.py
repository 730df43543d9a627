"""Shared fixtures: an isolated environment, an installed autotrace writing to a temporary local
store, and helpers to read finished observations back as exact trees."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace

import autotrace
from tests.helpers import Traced

_CLEARED_PREFIXES = ("AUTOTRACE_", "LANGFUSE_", "OTEL_")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTOTRACE_HOME", str(tmp_path / "home"))
    autotrace.reset_stats()
    yield
    autotrace.uninstall(timeout=2.0)
    leaked = trace.get_current_span().get_span_context()
    assert not leaked.is_valid, "a test left a span attached to the context"


@pytest.fixture
def traced(tmp_path: Path) -> Traced:
    path = tmp_path / "traces.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=(), export_interval=0.05)
    return Traced(path)


