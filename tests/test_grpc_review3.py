"""gRPC, third review, with real grpcio servers on loopback: behaviours that carry grpc's own
options (a method's own thread pool, a non-blocking stream), and status details recorded whole."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

import autotrace
from autotrace.integrations.grpc import instrument_channel
from tests import grpc_services as svc
from tests.helpers import Traced, shape

SERVICE = "t.Opts"


@pytest.fixture
def traced(tmp_path: Any) -> Traced:
    return svc.install(tmp_path)


def _serve(methods: dict[str, grpc.RpcMethodHandler]) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="default"))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, methods),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def _levels(traced: Traced, trace_id: str) -> list[tuple[str, str, str | None]]:
    return [(r["name"], r["level"], r["status_message"]) for r in traced.trace(trace_id)]


def test_a_method_on_its_own_thread_pool_still_runs_there(traced: Traced) -> None:
    """grpc's sync server runs a behaviour on the pool it names (``experimental_thread_pool``):
    traced, it ran on the server's default pool, which the application had kept it off."""
    own = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dedicated")

    def where(request: Any, context: grpc.ServicerContext) -> dict[str, Any]:
        with autotrace.start_retrieval("lookup", query="q"):
            pass
        return {"thread": threading.current_thread().name}

    where.experimental_thread_pool = own  # type: ignore[attr-defined]
    server, port = _serve({"Where": grpc.unary_unary_rpc_method_handler(where, **svc.SERVER_KW)})
    try:
        with autotrace.start_chain("caller") as root, grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = channel.unary_unary(f"/{SERVICE}/Where", **svc.CLIENT_KW)({})
    finally:
        server.stop(0)
        own.shutdown()
    assert reply == {"thread": "dedicated_0"}
    assert shape(traced.trace(root.trace_id)) == [("chain", "caller", [
        ("span", f"{SERVICE}/Where", [("span", f"{SERVICE}/Where", [("retriever", "lookup", [])])])])]


def _non_blocking(count: int, started: threading.Event, ended: threading.Event) -> Callable[..., None]:
    """A non-blocking stream behaviour: it returns at once, and a thread of its own sends ``count``
    items then the end (None); with ``count`` 0 it sends nothing. ``started``: set when it runs;
    ``ended``: when grpc calls the context's callbacks (after the interceptor's, added first)."""

    def behavior(request: Any, context: grpc.ServicerContext, send: Callable[[Any], None]) -> None:
        context.add_callback(ended.set)
        started.set()
        def run() -> None:
            for i in range(count):
                send({"i": i})
            send(None)

        if count:
            threading.Thread(target=run, daemon=True).start()

    behavior.experimental_non_blocking = True  # type: ignore[attr-defined]
    return behavior


def test_a_non_blocking_stream_sends_its_responses_and_its_span_ends_with_its_last(traced: Traced) -> None:
    """A behaviour with ``experimental_non_blocking`` is called with a third argument, the callback
    it sends through: traced, it was called without it and every call failed (UNKNOWN)."""
    behavior = _non_blocking(2, threading.Event(), threading.Event())
    server, port = _serve({"NB": grpc.unary_stream_rpc_method_handler(behavior, **svc.SERVER_KW)})
    try:
        with autotrace.start_chain("caller") as root, grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            replies = list(channel.unary_stream(f"/{SERVICE}/NB", **svc.CLIENT_KW)({}, timeout=10))
    finally:
        server.stop(0)
    assert replies == [{"i": 0}, {"i": 1}]
    assert _levels(traced, root.trace_id) == [
        ("caller", "DEFAULT", None), (f"{SERVICE}/NB", "DEFAULT", None), (f"{SERVICE}/NB", "DEFAULT", None)]


def test_a_non_blocking_stream_its_caller_gives_up_on_ends_when_the_call_does(traced: Traced) -> None:
    """A non-blocking stream that never sends its end: the server span ends when grpc ends the
    call (here its caller cancels it), as for any stream its caller gives up on."""
    started, ended = threading.Event(), threading.Event()
    server, port = _serve({"NB": grpc.unary_stream_rpc_method_handler(_non_blocking(0, started, ended),
                                                                      **svc.SERVER_KW)})
    try:
        with autotrace.start_chain("caller") as root, grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_stream(f"/{SERVICE}/NB", **svc.CLIENT_KW)({})
            assert started.wait(10)
            call.cancel()
            assert ended.wait(10)
    finally:
        server.stop(0)
    assert _levels(traced, root.trace_id) == [
        ("caller", "DEFAULT", None),
        (f"{SERVICE}/NB", "WARNING", "CANCELLED: Locally cancelled by application!"),
        (f"{SERVICE}/NB", "WARNING", "CANCELLED: the call was cancelled"),
    ]


def _aborting(details: str) -> Callable[..., Iterator[Any]]:
    def behavior(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, details)

    return behavior


@pytest.mark.parametrize("details", ["expected one of: ", "ratio must be < 1:", "bad  "])
def test_status_details_are_recorded_as_the_client_gets_them(traced: Traced, details: str) -> None:
    """Both spans' status message is ``CODE: details`` with the details whole: trailing colons
    and spaces were stripped from them."""
    server, port = _serve({"Bad": grpc.unary_unary_rpc_method_handler(_aborting(details), **svc.SERVER_KW)})
    try:
        with autotrace.start_chain("caller") as root, grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.RpcError) as raised:
                channel.unary_unary(f"/{SERVICE}/Bad", **svc.CLIENT_KW)({})
    finally:
        server.stop(0)
    assert raised.value.details() == details
    assert _levels(traced, root.trace_id) == [("caller", "DEFAULT", None)] + [
        (f"{SERVICE}/Bad", "ERROR", f"INVALID_ARGUMENT: {details}")] * 2


class _AppInterceptor(grpc.UnaryUnaryClientInterceptor):
    """An application's own client interceptor (auth, retries, ...)."""

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(details, request)


def test_a_traced_channel_under_the_applications_interceptor_is_not_traced_twice(traced: Traced) -> None:
    """``instrument_channel`` on a channel that already has our interceptor beneath the application's
    own (``grpc.intercept_channel`` of a channel made after ``install()``, or instrumented before)
    added a second one: each call had two sibling CLIENT spans."""
    server, port = svc.start_sync_server()
    try:
        with autotrace.start_chain("caller") as root:
            for make in (lambda: grpc.insecure_channel(f"127.0.0.1:{port}"),
                         lambda: instrument_channel(grpc.insecure_channel(f"127.0.0.1:{port}"))):
                channel = instrument_channel(grpc.intercept_channel(make(), _AppInterceptor()))
                with channel:
                    assert svc.Stub(channel).Unary({"text": "x"})["echo"] == "x"
    finally:
        server.stop(0)
    call = ("span", "test.Echo/Unary", [("span", "test.Echo/Unary", [("retriever", "inner-unary", [])])])
    assert shape(traced.trace(root.trace_id)) == [("chain", "caller", [call, call])]
