"""Critical review 18: a ``Decimal`` score that is no number (a signalling NaN: ``float()`` raises on
it) is dropped as an invalid score, as a quiet NaN is, not reported as autotrace's own internal error."""

from __future__ import annotations

from decimal import Decimal

import pytest

import autotrace
from tests.helpers import Traced


@pytest.mark.parametrize("value", [Decimal("sNaN"), Decimal("NaN"), Decimal("-Infinity")])
def test_a_decimal_nan_score_is_an_invalid_score(traced: Traced, value: Decimal) -> None:
    with autotrace.start_span("scored"):
        assert autotrace.score("accuracy", value) is None
    stats = autotrace.stats()
    assert {name: stats[name] for name in stats if name.startswith(("scores_dropped", "internal_errors"))} == {
        "scores_dropped.invalid": 1}
