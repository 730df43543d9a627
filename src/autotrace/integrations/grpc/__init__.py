"""gRPC: client and server interceptors for ``grpc`` and ``grpc.aio``, installed by patching channel
and server creation (see ``_interceptors`` for how each call maps to spans).

Channels and servers made before ``install()``: ``instrument_channel(channel)`` and
``server_interceptor(asyncio=False, tenant_from_call=None)``; a server's tenant per call comes from
``tenant_from_call(handler_call_details, servicer_context)`` (``install(grpc_tenant_from_call=...)``
for servers made after it). This module imports grpc only when it is used.
"""

from __future__ import annotations

from typing import Any

from ..base import Integration

_EXPORTED = ("ClientInterceptor", "ServerInterceptor", "AioServerInterceptor", "aio_client_interceptors",
             "instrument_channel", "server_interceptor")


def __getattr__(name: str) -> Any:
    if name in _EXPORTED:
        # grpc first: when install() waits for the application to import it, its patching runs on
        # that import and imports ``_interceptors`` itself; reached while ours was half done, it failed
        import grpc  # noqa: F401

        from . import _interceptors

        return getattr(_interceptors, name)
    raise AttributeError(name)


class GrpcIntegration(Integration):
    name = "grpc"
    distribution = "grpcio"
    module = "grpc"
    supported = ">=1.60,<2"

    def _instrument(self) -> None:
        from ._interceptors import _aio_channel, _aio_server, _sync_channel, _sync_server

        wrap = self.patcher.wrap
        wrap("grpc", "insecure_channel", _sync_channel)
        wrap("grpc", "secure_channel", _sync_channel)
        wrap("grpc", "server", _sync_server)
        wrap("grpc.aio", "insecure_channel", _aio_channel)
        wrap("grpc.aio", "secure_channel", _aio_channel)
        wrap("grpc.aio", "server", _aio_server)


INTEGRATION = GrpcIntegration()
