"""``flush``/``shutdown``/``uninstall`` timeouts past what a thread join takes: "as long as it
takes" (``float("inf")``, a huge number) waits as long as needed, without an internal error and
never raising into the application."""

from __future__ import annotations

from pathlib import Path

import pytest

import autotrace
from autotrace.export.local_store import LocalStore


@pytest.mark.parametrize("timeout", [float("inf"), 1e12, 10**400])
def test_an_unbounded_timeout_stops_the_pipeline_whole(tmp_path: Path, timeout: float) -> None:
    """An infinite or huge timeout raised OverflowError in a thread join inside the shutdown (logged
    as an internal error, its router left unclosed), and an int too large for a float raised out of
    ``flush()`` and ``uninstall()`` into the application."""
    path = tmp_path / "traces.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=(), export_interval=30)
    with autotrace.start_span("kept"):
        pass
    assert autotrace.flush(timeout) is True
    with autotrace.start_span("at-exit"):
        pass
    autotrace.uninstall(timeout)
    names = sorted(o["name"] for o in LocalStore(path, read_only=True).observations())
    assert (names, autotrace.stats()) == (["at-exit", "kept"], {"spans_exported": 2, "spans_exported.local": 2})
