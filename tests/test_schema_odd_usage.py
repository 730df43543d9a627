"""Usage, cost and prompt values of odd kinds given to the manual API: numpy's integers are token
counts (they were dropped as invalid), an SDK's usage object is counted as invalid (it was dropped
silently), and a mapping or prompt object that raises when read costs only its own field (the whole
observation lost its attributes: exported as a plain span, counted as an internal error)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import autotrace
from tests.helpers import Traced


@pytest.fixture
def traced(tmp_path: Path) -> Traced:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05)
    return Traced(tmp_path / "t.db")


class Unreadable(Mapping[str, Any]):
    """A mapping whose reading fails (a lazy proxy over a closed resource, say)."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("closed")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("closed")

    def __len__(self) -> int:
        return 2


class BrokenPrompt:
    @property
    def name(self) -> str:
        raise RuntimeError("prompt store down")


def _generation(**fields: Any) -> None:
    with autotrace.tenant("acme"), autotrace.start_generation("answer", model="gpt-4o-mini") as gen:
        gen.update(output="hi", **fields)


def test_numpy_integers_are_token_counts(traced: Traced) -> None:
    _generation(usage={"input": np.int64(3), "output": np.int32(4), "total": np.uint16(7)})
    record = traced.one()
    assert record["usage"] == {"input": 3, "output": 4, "total": 7}
    assert "usage_values_invalid" not in autotrace.stats()


def test_an_sdks_usage_object_is_counted_as_invalid_and_the_rest_kept(traced: Traced) -> None:
    _generation(usage=SimpleNamespace(prompt_tokens=3, completion_tokens=4))
    record = traced.one()
    assert (record["type"], record["output"], record["usage"]) == ("generation", "hi", None)
    assert autotrace.stats()["usage_values_invalid"] == 1


@pytest.mark.parametrize(("field", "counter"), [("usage", "usage_values_invalid"), ("cost", "cost_values_invalid"),
                                                ("prompt", "prompt_versions_invalid")])
def test_a_value_that_raises_when_read_costs_only_its_own_field(traced: Traced, field: str, counter: str) -> None:
    _generation(**{field: BrokenPrompt() if field == "prompt" else Unreadable()})
    record = traced.one()
    assert (record["type"], record["model"], record["output"]) == ("generation", "gpt-4o-mini", "hi")
    stats = autotrace.stats()
    assert stats[counter] == 1 and not any(key.startswith("internal_errors") for key in stats)
