"""A ``tenant_baggage`` list holding ``*`` beside other patterns names every target, as ``*``
alone (``all``) does: a call whose target is not known (HTTP clients, a channel without one) did
not carry the tenant, unlike with ``all``."""

from __future__ import annotations

from typing import Any

from autotrace import propagation
from tests import grpc_services as svc


def test_a_star_among_other_patterns_names_every_target(tmp_path: Any) -> None:
    svc.install(tmp_path, tenant_baggage="rag-service:*,*")
    assert propagation.tenant_travels_to(None) is True
    assert propagation.tenant_travels_to("billing:443") is True


def test_patterns_without_a_star_still_name_only_their_targets(tmp_path: Any) -> None:
    svc.install(tmp_path, tenant_baggage="rag-service:*")
    assert propagation.tenant_travels_to(None) is False
    assert propagation.tenant_travels_to("billing:443") is False
    assert propagation.tenant_travels_to("rag-service:50051") is True
