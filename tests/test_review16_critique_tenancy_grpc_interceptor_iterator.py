"""A sync server made after ``install()`` given its interceptors as an iterator (grpc takes any
iterable) that holds autotrace's ``server_interceptor()`` keeps every interceptor given: the
application's that refuses a call still refuses it. Before, autotrace read the iterator to look
for its own interceptor and then handed grpc the spent iterator: the server ran with no
interceptor at all, an authorisation check among them. Real grpcio server on loopback."""

from __future__ import annotations

from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

import autotrace
from autotrace.integrations import grpc as grpc_integration
from tests import grpc_services as svc
from tests.helpers import shape


class _Refuse(grpc.ServerInterceptor):
    """An authorisation check that lets no call through (grpc answers UNIMPLEMENTED)."""

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        return None


def test_interceptors_given_as_an_iterator_with_ours_are_all_kept(tmp_path: Path) -> None:
    traced = svc.install(tmp_path)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2),
                         interceptors=iter([grpc_integration.server_interceptor(), _Refuse()]))
    server.add_generic_rpc_handlers((svc.handler(svc.Echo()),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, autotrace.start_agent("turn") as turn:
            with pytest.raises(grpc.RpcError) as refused:
                svc.Stub(channel).Unary({"text": "hi"})
    finally:
        server.stop(None)
    assert refused.value.code() is grpc.StatusCode.UNIMPLEMENTED
    records = traced.trace(turn.trace_id)
    # the client span, and the server's for the refused call (named _OTHER: no handler ran)
    assert shape(records) == [("agent", "turn", [("span", "test.Echo/Unary", [("span", "_OTHER", [])])])]
