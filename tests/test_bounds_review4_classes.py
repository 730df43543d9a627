"""Bounds, fourth review: the classes a family integration wraps as they are defined (LangChain's
``Embeddings`` subclasses) are not kept alive by autotrace once the application lets them go, and
``uninstall()`` still restores the ones alive."""

from __future__ import annotations

import gc
import importlib
import weakref
from typing import Any

import pytest
from langchain_core.embeddings import Embeddings

import autotrace
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("langchain")


def _embeddings_class(i: int) -> type[Embeddings]:
    class Defined(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[float(i)] for _ in texts]

        def embed_query(self, text: str) -> list[float]:
            return [float(i)] if isinstance(self, __class__) else []  # a ``__class__`` cell: holds the class

    Defined.__name__ = Defined.__qualname__ = f"Defined{i}"
    return Defined


def _patches() -> int:
    integration: Any = importlib.import_module("autotrace.install")._integrations["langchain"]
    return integration.patcher.applied


def test_classes_defined_at_run_time_are_let_go_and_the_live_ones_restored(traced: Traced) -> None:
    kept = _embeddings_class(-1)
    before = _patches()
    refs = []
    for i in range(300):
        cls = _embeddings_class(i)
        assert cls().embed_query("q") == [float(i)]
        refs.append(weakref.ref(cls))
        del cls
    gc.collect()
    assert sum(ref() is not None for ref in refs) == 0  # all 300 were held by autotrace's patch list
    assert _patches() == before
    names = [r["name"] for r in traced.records()]
    assert names == [f"Defined{i}.embed_query" for i in range(300)]
    assert type(kept.__dict__["embed_query"]).__name__ == "FunctionWrapper"
    autotrace.uninstall()
    assert type(kept.__dict__["embed_query"]).__name__ == "function"
