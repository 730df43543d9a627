"""``tenant_baggage`` matches a channel target by the address it names under a resolver scheme.
Two addresses were misread: ``unix:///run/rag.sock`` named ``run/rag.sock`` (the absolute path's
first ``/`` taken for an authority's end, which the unix scheme has none of), so a pattern written
as the socket's path never matched; and an IPv6 literal (``[::1]:50051``, ``ipv6:[::1]:50051``)
never matched a pattern naming it, whose brackets fnmatch read as a character class (``[::1]``:
one ``:`` or ``1``). Real grpcio channels to a loopback server recording the metadata it gets."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

import autotrace
from autotrace import propagation
from tests import grpc_services as svc


class _Recorder:
    """A plain gRPC server on a unix socket and on IPv6 loopback, recording each call's metadata."""

    def __init__(self, socket_path: Path) -> None:
        self.seen: list[dict[str, str]] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("ext.Billing", {
            "Charge": grpc.unary_unary_rpc_method_handler(self._charge, **svc.SERVER_KW)}),))
        self.server.add_insecure_port(f"unix:{socket_path}")
        self.port = self.server.add_insecure_port("[::1]:0")
        self.server.start()

    def _charge(self, request: Any, context: grpc.ServicerContext) -> dict[str, Any]:
        self.seen.append(dict(context.invocation_metadata()))
        return {}


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[_Recorder]:
    server = _Recorder(tmp_path / "rag.sock")
    yield server
    server.server.stop(0)


@pytest.mark.parametrize(("target", "setting"), [
    ("unix://{sock}", "{sock}"),  # unix:///tmp/.../rag.sock names the path /tmp/.../rag.sock
    ("unix://{sock}", "{dir}/*.sock"),
    ("[::1]:{port}", "[::1]:*"),
    ("ipv6:[::1]:{port}", "[::1]:{port}"),
])
def test_a_pattern_naming_the_address_tells_the_tenant(tmp_path: Path, recorder: _Recorder, target: str,
                                                       setting: str) -> None:
    names = {"sock": tmp_path / "rag.sock", "dir": tmp_path, "port": recorder.port}
    svc.install(tmp_path, tenant_baggage=setting.format(**names))
    with grpc.insecure_channel(target.format(**names)) as channel, autotrace.tenant("acme"):
        channel.unary_unary(svc.RECORDED_METHOD, **svc.CLIENT_KW)({})
    (seen,) = recorder.seen
    assert seen.get("baggage") == "autotrace.tenant=acme"


@pytest.mark.parametrize(("target", "travels"), [
    ("unix:///run/rag.sock", True),
    ("unix:/run/rag.sock", True),
    ("unix:run/rag.sock", False),  # a relative path is another socket
    ("ipv6:[::1]:50051", True),
    ("ipv6:[::1]:50051,[::2]:50051", False),
    ("1:50051", False),  # what the brackets, read as a class, matched
    ("rag-a:1", True),  # a pattern's own character class still is one
    ("rag-c:1", False),
])
def test_addresses_as_the_resolver_reads_them(tmp_path: Path, target: str, travels: bool) -> None:
    svc.install(tmp_path, tenant_baggage="/run/*.sock,[::1]:50051,rag-[ab]:*")
    assert propagation.tenant_travels_to(target) is travels
