"""A small JSON-over-gRPC service (no protoc needed) with all four call kinds, sync and asyncio."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio

import autotrace
from tests.helpers import Traced

SERVICE = "test.Echo"


def install(tmp_path: Any, **options: Any) -> Traced:
    """autotrace with the gRPC integration, into a local store under ``tmp_path``."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "e.db", integrations=("grpc",),
                      export_interval=0.05, **options)
    return Traced(tmp_path / "e.db")


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def loads(raw: bytes) -> Any:
    return json.loads(raw)


SERVER_KW = {"request_deserializer": loads, "response_serializer": dumps}
CLIENT_KW = {"request_serializer": dumps, "response_deserializer": loads}


def _inner(name: str) -> dict[str, Any]:
    with autotrace.start_retrieval(f"inner-{name}", query=name) as ret:
        ret.update(doc_count=1)
    return {"tenant": autotrace.current_tenant(), "traceparent": None}


class Echo:
    """Sync behaviours."""

    def Unary(self, request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        if request.get("fail"):
            context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        seen = _inner("unary")
        seen["traceparent"] = dict(context.invocation_metadata()).get("traceparent")
        return {"echo": request.get("text"), **seen}

    def ServerStream(self, request: dict[str, Any], context: grpc.ServicerContext) -> Iterator[dict[str, Any]]:
        for i in range(request.get("n", 3)):
            _inner(f"stream-{i}")
            yield {"i": i}

    def ClientStream(self, requests: Iterator[dict[str, Any]], context: grpc.ServicerContext) -> dict[str, Any]:
        total = sum(r["n"] for r in requests)
        _inner("client-stream")
        return {"total": total}

    def Bidi(self, requests: Iterator[dict[str, Any]], context: grpc.ServicerContext) -> Iterator[dict[str, Any]]:
        for r in requests:
            yield {"twice": r["n"] * 2}


class AioEcho:
    """Asyncio behaviours."""

    async def Unary(self, request: dict[str, Any], context: grpc.aio.ServicerContext) -> dict[str, Any]:
        if request.get("fail"):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "nope")
        return {"echo": request.get("text"), **_inner("aio-unary")}

    async def ServerStream(self, request: dict[str, Any], context: Any) -> AsyncIterator[dict[str, Any]]:
        for i in range(request.get("n", 3)):
            yield {"i": i}

    async def ClientStream(self, requests: AsyncIterator[dict[str, Any]], context: Any) -> dict[str, Any]:
        total = 0
        async for r in requests:
            total += r["n"]
        return {"total": total}

    async def Bidi(self, requests: AsyncIterator[dict[str, Any]], context: Any) -> AsyncIterator[dict[str, Any]]:
        async for r in requests:
            yield {"twice": r["n"] * 2}


def handler(servicer: Any) -> grpc.GenericRpcHandler:
    kw = SERVER_KW
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Unary": grpc.unary_unary_rpc_method_handler(servicer.Unary, **kw),
        "ServerStream": grpc.unary_stream_rpc_method_handler(servicer.ServerStream, **kw),
        "ClientStream": grpc.stream_unary_rpc_method_handler(servicer.ClientStream, **kw),
        "Bidi": grpc.stream_stream_rpc_method_handler(servicer.Bidi, **kw),
    })


def start_sync_server(**server_kwargs: Any) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), **server_kwargs)
    server.add_generic_rpc_handlers((handler(Echo()),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


class Stub:
    """Client callables for a channel (sync or asyncio)."""

    def __init__(self, channel: Any) -> None:
        kw = CLIENT_KW
        self.Unary = channel.unary_unary(f"/{SERVICE}/Unary", **kw)
        self.ServerStream = channel.unary_stream(f"/{SERVICE}/ServerStream", **kw)
        self.ClientStream = channel.stream_unary(f"/{SERVICE}/ClientStream", **kw)
        self.Bidi = channel.stream_stream(f"/{SERVICE}/Bidi", **kw)


async def start_server(asyncio_server: bool, *handlers: grpc.GenericRpcHandler,
                       interceptors: Any = None) -> tuple[Any, int]:
    """A started ``grpc`` (thread pool of 4) or ``grpc.aio`` server on a loopback port, and the port."""
    server: Any = (grpc.aio.server(interceptors=interceptors) if asyncio_server
                   else grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=interceptors))
    server.add_generic_rpc_handlers(handlers)
    port = server.add_insecure_port("127.0.0.1:0")
    started = server.start()
    if asyncio_server:
        await started
    return server, port


async def stop_server(server: Any) -> None:
    stopped = server.stop(0)
    if isinstance(server, grpc.aio.Server):
        await stopped


class MetadataRecorder:
    """A plain gRPC server (not traced: start it before ``install()``) that records the metadata of
    every call to ``RECORDED_METHOD``, but its user agent: what a third party would receive."""

    def __init__(self) -> None:
        self.seen: list[list[tuple[str, str]]] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("ext.Billing", {
            "Charge": grpc.unary_unary_rpc_method_handler(self._charge, **SERVER_KW)}),))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def _charge(self, request: Any, context: grpc.ServicerContext) -> dict[str, Any]:
        self.seen.append([(k, v) for k, v in context.invocation_metadata() if k != "user-agent"])
        return {}


RECORDED_METHOD = "/ext.Billing/Charge"
