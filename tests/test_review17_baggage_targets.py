"""``tenant_baggage`` patterns name services as ``host:port``; a channel made with a gRPC resolver
scheme (``dns:///host:port``, ``ipv4:addr:port``) names the same service and is told the tenant
alike. Real grpcio channels to a loopback server that records the metadata it gets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

import autotrace
from autotrace import propagation
from tests import grpc_services as svc


@pytest.fixture
def recorder() -> Iterator[svc.MetadataRecorder]:
    server = svc.MetadataRecorder()
    yield server
    server.server.stop(0)


@pytest.mark.parametrize(("target", "setting", "tenant_sent"), [
    ("dns:///127.0.0.1:{port}", "127.0.0.1:*", True),
    ("dns:127.0.0.1:{port}", "127.0.0.1:*", True),
    ("ipv4:127.0.0.1:{port}", "127.0.0.1:*", True),
    ("ipv4:127.0.0.1:{port},127.0.0.1:{port}", "127.0.0.1:*", True),
    ("dns:///127.0.0.1:{port}", "rag-service:*", False),
    ("dns:///127.0.0.1:{port}", "dns:///127.0.0.1:*", True),  # a pattern written with the scheme
])
def test_a_target_with_a_resolver_scheme_matches_the_address_it_names(
        tmp_path: Any, recorder: svc.MetadataRecorder, target: str, setting: str, tenant_sent: bool) -> None:
    traced = svc.install(tmp_path, tenant_baggage=setting)
    with grpc.insecure_channel(target.format(port=recorder.port)) as channel, autotrace.tenant("acme"):
        channel.unary_unary(svc.RECORDED_METHOD, **svc.CLIENT_KW)({})
    (seen,) = [dict(pairs) for pairs in recorder.seen]
    assert seen.get("baggage") == ("autotrace.tenant=acme" if tenant_sent else None)
    (client,) = traced.records()
    assert seen["traceparent"].split("-")[1] == client["trace_id"]  # the trace travels either way


@pytest.mark.parametrize(("target", "travels"), [
    ("dns://8.8.8.8/rag-service:50051", True),  # the authority is the DNS server, not the destination
    ("DNS:///rag-service:50051", True),
    ("ipv4:10.0.0.1:50051,10.0.0.2:50051", False),  # one address of the list is not named
    ("unix:///run/rag.sock", False),
    ("dns:///", False),
    ("evil-rag-service:50051", False),
])
def test_every_address_a_target_names_must_match(tmp_path: Any, target: str, travels: bool) -> None:
    svc.install(tmp_path, tenant_baggage="rag-service:*,10.0.0.1:*")
    assert propagation.tenant_travels_to(target) is travels
