"""Test helpers: read finished observations back from the local store as exact trees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import autotrace
from autotrace import render


class Traced:
    """An installed autotrace whose spans land in a temporary local store."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[dict[str, Any]]:
        assert autotrace.flush(10.0), "flush timed out"
        store = autotrace.local_store()
        assert store is not None
        return sorted(store.observations(), key=lambda r: (r["start_ns"], r["name"]))

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        assert autotrace.flush(10.0)
        store = autotrace.local_store()
        assert store is not None
        return store.trace(trace_id)


def shape(records: list[dict[str, Any]]) -> list[Any]:
    """The tree as nested ``(type, name, [children])`` tuples, children in start order."""

    def convert(node: tuple[dict[str, Any], list[Any]]) -> tuple[str, str, list[Any]]:
        record, children = node
        return (record["type"], record["name"], [convert(child) for child in children])

    return [convert(root) for root in render.build_tree(sorted(records, key=lambda r: r["start_ns"]))]


def install_one_tenant(rx: Any, **options: Any) -> None:
    """autotrace installed with one tenant, ``t``, exporting to the receiver ``rx``."""
    from autotrace.export.credentials import Credentials

    autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                      credentials={"t": Credentials("pk-t", "sk-t", host=rx.endpoint)}, **options)


def ended_span(name: str = "s", tenant: str | None = None) -> None:
    """One finished span named ``name``, in ``tenant``'s scope when given."""
    import autotrace

    if tenant is None:
        with autotrace.start_span(name):
            pass
    else:
        with autotrace.tenant(tenant), autotrace.start_span(name):
            pass
