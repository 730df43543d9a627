"""Review 21 critique (real faiss-cpu): a search kept to some ids by a selector whose class the
application derived from a faiss selector recorded that class's name as the selector's kind (a
``TenantIds(IDSelectorBatch)`` as kind ``tenantids``, its size and a ``not``'s parts lost). Its kind
is its faiss base's now, read as that selector is."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.helpers import Traced

faiss = pytest.importorskip("faiss")

pytestmark = pytest.mark.integrations("faiss")


class TenantIds(faiss.IDSelectorBatch):  # type: ignore[misc, name-defined]
    """A tenant's ids, as an application might wrap them."""

    def __init__(self, ids: Any, tenant: str) -> None:
        super().__init__(np.asarray(ids, dtype="int64"))
        self.tenant = tenant


class Excluding(faiss.IDSelectorNot):  # type: ignore[misc, name-defined]
    pass


class Plain(faiss.IDSelectorBatch):  # type: ignore[misc, name-defined]
    pass


def test_a_selector_of_an_applications_class_records_its_faiss_kind(traced: Traced) -> None:
    index = faiss.IndexFlatL2(2)
    index.add(np.array([[float(i), 0.0] for i in range(100)], dtype="float32"))
    query = np.array([[50.2, 0.0]], dtype="float32")
    tenant = TenantIds(range(0, 100, 2), "acme")
    _, ids = index.search(query, 2, params=faiss.SearchParameters(sel=tenant))
    _, others = index.search(query, 2, params=faiss.SearchParameters(sel=Excluding(tenant)))
    _, few = index.search(query, 2, params=faiss.SearchParameters(sel=Plain([1, 2, 3])))
    assert (ids.tolist(), others.tolist(), few.tolist()) == ([[50, 52]], [[51, 49]], [[3, 2]])  # as faiss answers
    records = traced.records()
    assert [r["metadata"].get("id_filter") for r in records] == [  # were kinds tenantids, excluding, plain
        {"kind": "batch", "size": 50}, {"kind": "not", "of": [{"kind": "batch", "size": 50}]},
        {"kind": "batch", "size": 3}]
    assert [[d["id"] for d in r["output"]] for r in records] == [[50, 52], [51, 49], [3, 2]]
