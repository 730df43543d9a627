"""A gRPC service that learns the tenant from the call itself (its metadata, its peer's identity):
``install(grpc_tenant_from_call=fn)`` / ``server_interceptor(tenant_from_call=fn)`` names it before
the server span starts, so the span and the handler's own spans go to that tenant. Before, a tenant
set inside the handler left the server span without one: dropped (``spans_dropped.no_tenant``).

Real grpcio servers on loopback, spans received by a loopback OTLP endpoint per tenant key pair."""

from __future__ import annotations

import asyncio
import base64
import logging
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import openai
import pytest

import autotrace
from autotrace.config import ConfigError
from autotrace.export.credentials import Credentials
from autotrace.integrations import grpc as grpc_integration
from autotrace.testing.fake_openai import FakeOpenAI
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.grpc_services import CLIENT_KW, SERVER_KW

SERVICE = "test.Tenanted"
SHAPES = ("Unary", "ServerStream", "ClientStream", "Bidi")
SERVER_KIND = 2  # OTLP's SPAN_KIND_SERVER


def _install(rx: OtlpReceiver, **options: Any) -> None:
    """Tenants ``acme`` and ``globex``, each exporting with its own key pair to ``rx``."""
    autotrace.install(langfuse_host="http://127.0.0.1:9", export_interval=0.05,
                      integrations=options.pop("integrations", ("grpc",)),
                      credentials={name: Credentials(f"pk-{name}", f"sk-{name}", host=rx.endpoint)
                                   for name in ("acme", "globex")}, **options)


def _from_metadata(details: Any, context: Any) -> str | None:
    return dict(details.invocation_metadata or ()).get("x-tenant")


async def _from_metadata_async(details: Any, context: Any) -> str | None:
    await asyncio.sleep(0)
    return _from_metadata(details, context)


@autotrace.observe(name="work")
def _work(shape: str) -> dict[str, Any]:
    return {"shape": shape, "tenant": autotrace.current_tenant()}


class Sync:
    def Unary(self, request: Any, context: Any) -> dict[str, Any]:
        return _work("Unary")

    def ServerStream(self, request: Any, context: Any) -> Iterator[dict[str, Any]]:
        yield _work("ServerStream")

    def ClientStream(self, requests: Iterator[Any], context: Any) -> dict[str, Any]:
        list(requests)
        return _work("ClientStream")

    def Bidi(self, requests: Iterator[Any], context: Any) -> Iterator[dict[str, Any]]:
        for _ in requests:
            yield _work("Bidi")


class Aio:
    async def Unary(self, request: Any, context: Any) -> dict[str, Any]:
        return _work("Unary")

    async def ServerStream(self, request: Any, context: Any) -> AsyncIterator[dict[str, Any]]:
        yield _work("ServerStream")

    async def ClientStream(self, requests: AsyncIterator[Any], context: Any) -> dict[str, Any]:
        async for _ in requests:
            pass
        return _work("ClientStream")

    async def Bidi(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[dict[str, Any]]:
        async for _ in requests:
            yield _work("Bidi")


def _handler(servicer: Any) -> grpc.GenericRpcHandler:
    kinds = (grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler,
             grpc.stream_unary_rpc_method_handler, grpc.stream_stream_rpc_method_handler)
    return grpc.method_handlers_generic_handler(SERVICE, {
        shape: kind(getattr(servicer, shape), **SERVER_KW) for shape, kind in zip(SHAPES, kinds, strict=True)})


async def _serve(asyncio_server: bool, servicer: Any, interceptors: Any = None,
                 tls: grpc.ServerCredentials | None = None) -> tuple[Any, int]:
    """A started server; a sync one has one thread, so every call runs on the same one."""
    server: Any = (grpc.aio.server(interceptors=interceptors) if asyncio_server
                   else grpc.server(futures.ThreadPoolExecutor(max_workers=1), interceptors=interceptors))
    server.add_generic_rpc_handlers((_handler(servicer),))
    port = server.add_secure_port("127.0.0.1:0", tls) if tls else server.add_insecure_port("127.0.0.1:0")
    started = server.start()
    if asyncio_server:
        await started
    return server, port


async def _call(channel: Any, shape: str, metadata: Any = ()) -> Any:
    """The call's reply (a list of them for a streamed one)."""
    path, metadata = f"/{SERVICE}/{shape}", tuple(metadata)
    if shape == "Unary":
        return await channel.unary_unary(path, **CLIENT_KW)({}, metadata=metadata)
    if shape == "ServerStream":
        return [r async for r in channel.unary_stream(path, **CLIENT_KW)({}, metadata=metadata)]
    if shape == "ClientStream":
        return await channel.stream_unary(path, **CLIENT_KW)(iter([{}, {}]), metadata=metadata)
    return [r async for r in channel.stream_stream(path, **CLIENT_KW)(iter([{}]), metadata=metadata)]


def _calls(asyncio_server: bool, servicer: Any, calls: list[tuple[str, Any]], interceptors: Any = None,
           tenant: str | None = None, tls: tuple[Any, Any] | None = None) -> list[Any]:
    """Each ``(shape, metadata)`` call made in turn (under the caller's ``tenant``, if given); over
    TLS with ``tls``, the server's and the client's credentials."""
    async def scenario() -> list[Any]:
        server, port = await _serve(asyncio_server, servicer, interceptors, tls[0] if tls else None)
        try:
            async with (grpc.aio.secure_channel(f"localhost:{port}", tls[1]) if tls
                        else grpc.aio.insecure_channel(f"127.0.0.1:{port}")) as channel:
                replies = []
                for shape, metadata in calls:
                    if tenant is None:
                        replies.append(await _call(channel, shape, metadata))
                    else:
                        with autotrace.tenant(tenant):
                            replies.append(await _call(channel, shape, metadata))
                return replies
        finally:
            stopped = server.stop(0)
            if asyncio_server:
                await stopped

    return asyncio.run(scenario())


def _exported(rx: OtlpReceiver, count: int) -> list[tuple[str, str, str | None, str | None]]:
    """(key pair's public key, span name, the span's tenant, its parent's name) of every span
    exported, once ``count`` have arrived; a parent that was not exported is named None."""
    assert autotrace.flush(5.0)
    spans = rx.wait_for_spans(count)
    names = {s.span_id: s.name for s in spans}
    return sorted((base64.b64decode(s.headers["authorization"].split()[1]).decode().split(":")[0], s.name,
                   s.attributes.get("autotrace.tenant"), names.get(s.parent_span_id or "")) for s in spans)


def _tree(key: str, tenant: str, shapes: tuple[str, ...] = SHAPES) -> list[tuple[str, str, str, str | None]]:
    """What each call of ``shapes`` exports: its server span (its caller's span is not exported)
    and, under it, the handler's ``work``."""
    return sorted([row for shape in shapes for row in (
        (key, f"{SERVICE}/{shape}", tenant, None), (key, "work", tenant, f"{SERVICE}/{shape}"))])


def _one(reply: Any) -> Any:
    return reply[0] if isinstance(reply, list) else reply


# -- the tenant the call names ----------------------------------------------------------------------
@pytest.mark.parametrize(("asyncio_server", "resolver"), [
    (False, _from_metadata), (True, _from_metadata), (True, _from_metadata_async)])
def test_the_tenant_a_call_names_covers_its_server_span_and_handler_in_all_four_shapes(
        rx: OtlpReceiver, asyncio_server: bool, resolver: Any) -> None:
    """Every shape, sync and grpc.aio (an ``async`` function there too): the server span and the
    handler's span are acme's, sent with acme's keys; the next call on the same thread (or task
    of the same server), naming none, gets none: its spans are dropped, never sent as acme's."""
    _install(rx, grpc_tenant_from_call=resolver)
    calls = [(shape, [("x-tenant", "acme")]) for shape in SHAPES] + [(shape, []) for shape in SHAPES]
    replies = _calls(asyncio_server, Aio() if asyncio_server else Sync(), calls)
    assert [_one(r) for r in replies] == [{"shape": s, "tenant": t} for t in ("acme", None) for s in SHAPES]
    assert _exported(rx, 8) == _tree("pk-acme", "acme")
    # the callers' 8 spans, the 4 untenanted calls' server and handler spans
    assert autotrace.stats()["spans_dropped.no_tenant"] == 16
    assert "tenant_resolver_errors" not in autotrace.stats()


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_an_openai_call_in_the_handler_goes_with_the_server_span_to_the_tenant(
        rx: OtlpReceiver, fake: FakeOpenAI, asyncio_server: bool) -> None:
    """The function may read the servicer context (here its metadata; ``auth_context()`` under mTLS)."""
    seen: list[Any] = []

    def from_context(details: Any, context: Any) -> str | None:
        seen.append((details.method, type(context).__name__))
        return dict(context.invocation_metadata()).get("x-tenant")

    class SyncOpenAI(Sync):
        def Unary(self, request: Any, context: Any) -> dict[str, Any]:
            client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            return {"tenant": autotrace.current_tenant()}

    class AioOpenAI(Aio):
        async def Unary(self, request: Any, context: Any) -> dict[str, Any]:
            client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
            await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            return {"tenant": autotrace.current_tenant()}

    _install(rx, integrations=("grpc", "openai"))
    interceptors = [grpc_integration.server_interceptor(asyncio=asyncio_server, tenant_from_call=from_context)]
    (reply,) = _calls(asyncio_server, AioOpenAI() if asyncio_server else SyncOpenAI(), [("Unary", [("x-tenant", "globex")])],
                      interceptors=interceptors)
    assert reply == {"tenant": "globex"}
    context_type = "_ServicerContext" if asyncio_server else "_Context"
    assert seen == [(f"/{SERVICE}/Unary", context_type)]
    assert _exported(rx, 2) == [("pk-globex", "openai.chat", "globex", f"{SERVICE}/Unary"),
                                ("pk-globex", f"{SERVICE}/Unary", "globex", None)]


def _tls(directory: Path, client: str) -> tuple[grpc.ServerCredentials, grpc.ChannelCredentials]:
    """Mutual TLS: a CA, the server's certificate (localhost) and the client's, named ``client``."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=test-ca")
    (directory / "san.ext").write_text("subjectAltName=DNS:localhost\n")
    for name, subject in (("server", "localhost"), ("client", client)):
        run("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={subject}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "1", *(["-extfile", "san.ext"] if name == "server" else []))
    read = {name: (directory / name).read_bytes() for name in
            ("ca.pem", "server.key", "server.pem", "client.key", "client.pem")}
    return (grpc.ssl_server_credentials([(read["server.key"], read["server.pem"])], read["ca.pem"], True),
            grpc.ssl_channel_credentials(read["ca.pem"], read["client.key"], read["client.pem"]))


def _from_certificate(details: Any, context: Any) -> str | None:
    names = context.auth_context().get("x509_common_name") or [b""]
    return names[0].decode() or None


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize("asyncio_server", [False, True])
def test_the_tenant_of_a_client_certificate_under_mutual_tls(rx: OtlpReceiver, tmp_path: Path,
                                                            asyncio_server: bool) -> None:
    """The identity the server authenticated (``servicer_context.auth_context()``), not anything the
    caller says in metadata, names the tenant."""
    _install(rx, grpc_tenant_from_call=_from_certificate)
    replies = _calls(asyncio_server, Aio() if asyncio_server else Sync(),
                     [(shape, [("x-tenant", "globex")]) for shape in SHAPES], tls=_tls(tmp_path, "acme"))
    assert [_one(r) for r in replies] == [{"shape": s, "tenant": "acme"} for s in SHAPES]
    assert _exported(rx, 8) == _tree("pk-acme", "acme")


# -- a function that fails, or names no tenant ------------------------------------------------------
def _raising(details: Any, context: Any) -> str:
    raise KeyError("no such token")


async def _raising_async(details: Any, context: Any) -> str:
    raise KeyError("no such token")


@pytest.mark.parametrize(("asyncio_server", "resolver"), [
    (False, _raising), (True, _raising), (True, _raising_async)])
def test_a_raising_function_leaves_the_call_untouched_and_its_spans_unsent(
        rx: OtlpReceiver, caplog: pytest.LogCaptureFixture, asyncio_server: bool, resolver: Any) -> None:
    """Counted and said once; the handler runs and answers as untraced, with no tenant; its spans
    and the server span are dropped (counted), sent to no tenant."""
    _install(rx, grpc_tenant_from_call=resolver)
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        replies = _calls(asyncio_server, Aio() if asyncio_server else Sync(),
                         [(shape, [("x-tenant", "acme")]) for shape in SHAPES])
    assert [_one(r) for r in replies] == [{"shape": s, "tenant": None} for s in SHAPES]
    assert _exported(rx, 0) == []
    stats = autotrace.stats()
    assert (stats["tenant_resolver_errors"], stats["spans_dropped.no_tenant"]) == (4, 12)
    assert [r.getMessage() for r in caplog.records if r.name == "autotrace"] == [
        "autotrace: tenant function raised KeyError; request has no tenant",
        "autotrace: dropping spans with no tenant (unknown_tenant='drop'): 'default' sends them to the default "
        "project's keys, 'local' to the local store (counted as spans_dropped.no_tenant)"]


@pytest.mark.parametrize(("returned", "errors"), [(None, 0), ("", 1), (42, 1), (b"acme", 1), ("acme\n", 1)])
def test_a_function_naming_no_tenant_id_gives_none(rx: OtlpReceiver, returned: Any, errors: int) -> None:
    """None is no tenant; anything but a tenant id is no tenant either, counted as the HTTP
    middleware's function is (one rule, shared)."""
    _install(rx, grpc_tenant_from_call=lambda details, context: returned)
    (reply,) = _calls(False, Sync(), [("Unary", [("x-tenant", "acme")])])
    assert reply == {"shape": "Unary", "tenant": None}
    assert _exported(rx, 0) == []
    assert autotrace.stats().get("tenant_resolver_errors", 0) == errors


def test_an_async_function_for_a_sync_handler_is_no_tenant_and_never_left_unawaited(
        rx: OtlpReceiver, recwarn: pytest.WarningsRecorder) -> None:
    """A sync server cannot await it: counted, closed (no "never awaited" warning), no tenant."""
    _install(rx, grpc_tenant_from_call=_from_metadata_async)
    (reply,) = _calls(False, Sync(), [("Unary", [("x-tenant", "acme")])])
    assert reply == {"shape": "Unary", "tenant": None}
    assert _exported(rx, 0) == []
    assert autotrace.stats()["tenant_resolver_errors"] == 1
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


# -- which tenant wins ------------------------------------------------------------------------------
def _sides(rx: OtlpReceiver, count: int) -> list[tuple[str, str, str | None]]:
    """(client or server, key pair's public key, tenant) of each exported call span, once ``count``
    spans have arrived."""
    return sorted(("server" if kind == SERVER_KIND else "client", key, tenant)
                  for key, kind, tenant in _keyed(rx, count) if kind is not None)


def _keyed(rx: OtlpReceiver, count: int) -> list[tuple[str, int | None, str | None]]:
    assert autotrace.flush(5.0)
    return [(base64.b64decode(s.headers["authorization"].split()[1]).decode().split(":")[0],
             s.kind if s.name.startswith(SERVICE) else None, s.attributes.get("autotrace.tenant"))
            for s in rx.wait_for_spans(count)]


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_the_services_function_wins_over_a_trusted_callers_baggage(rx: OtlpReceiver, asyncio_server: bool) -> None:
    """A caller (globex, trusted) calls for acme's data: the service's function names acme, so the
    server side is acme's; where it names none, the trusted caller's tenant is used."""
    _install(rx, grpc_tenant_from_call=_from_metadata, trust_incoming_tenant=True)
    replies = _calls(asyncio_server, Aio() if asyncio_server else Sync(),
                     [("Unary", [("x-tenant", "acme")]), ("Unary", [])], tenant="globex")
    assert replies == [{"shape": "Unary", "tenant": "acme"}, {"shape": "Unary", "tenant": "globex"}]
    assert _sides(rx, 6) == [("client", "pk-globex", "globex"), ("client", "pk-globex", "globex"),
                             ("server", "pk-acme", "acme"), ("server", "pk-globex", "globex")]


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_a_function_that_raises_gives_no_tenant_not_the_trusted_callers(rx: OtlpReceiver, asyncio_server: bool) -> None:
    """Fail closed: the caller's baggage (globex, trusted) stood in for the tenant the service's
    function failed to name; the call runs with none (its server span dropped: no tenant)."""
    _install(rx, grpc_tenant_from_call=_raising_async if asyncio_server else _raising, trust_incoming_tenant=True)
    replies = _calls(asyncio_server, Aio() if asyncio_server else Sync(), [("Unary", [])], tenant="globex")
    assert replies == [{"shape": "Unary", "tenant": None}]
    assert _sides(rx, 1) == [("client", "pk-globex", "globex")]
    assert autotrace.flush(10.0)
    assert autotrace.stats()["tenant_resolver_errors"] == 1
    assert autotrace.stats()["spans_dropped.no_tenant"] == 2  # the server span and the handler's


class _Auth(grpc.ServerInterceptor):
    """The service's own interceptor, putting ``globex`` in scope for every call."""

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        autotrace.set_tenant("globex")
        return continuation(details)


class _AioAuth(grpc.aio.ServerInterceptor):
    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        autotrace.set_tenant("globex")
        return await continuation(details)


@pytest.mark.parametrize("asyncio_server", [False, True])
def test_the_functions_tenant_wins_over_an_outer_interceptors_and_none_keeps_it(
        rx: OtlpReceiver, asyncio_server: bool) -> None:
    """As with the HTTP middleware under an outer layer: the function's tenant id is the call's; its
    None leaves the interceptor's scope (which still wins over a trusted caller's baggage)."""
    _install(rx, grpc_tenant_from_call=_from_metadata, trust_incoming_tenant=True)
    replies = _calls(asyncio_server, Aio() if asyncio_server else Sync(),
                     [("Unary", [("x-tenant", "acme")]), ("Unary", [("baggage", "autotrace.tenant=acme")])],
                     interceptors=[_AioAuth() if asyncio_server else _Auth()])
    assert replies == [{"shape": "Unary", "tenant": "acme"}, {"shape": "Unary", "tenant": "globex"}]
    assert _sides(rx, 4) == [("server", "pk-acme", "acme"), ("server", "pk-globex", "globex")]


# -- configuration ----------------------------------------------------------------------------------
def test_a_function_that_is_not_callable_is_refused_where_it_is_given(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="grpc_tenant_from_call"):
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", grpc_tenant_from_call="x-tenant")
    with pytest.raises(TypeError, match="tenant_from_call must be callable, got a str"):
        grpc_integration.server_interceptor(tenant_from_call="x-tenant")  # type: ignore[arg-type]


def test_a_server_made_before_install_takes_the_function_its_interceptor_is_given(rx: OtlpReceiver) -> None:
    """``server_interceptor(tenant_from_call=...)`` for a server made before ``install()``; one made
    without takes the installed function (none then), as its interceptor is made before it."""
    explicit = grpc_integration.server_interceptor(tenant_from_call=_from_metadata)
    bare = grpc_integration.server_interceptor()
    _install(rx, grpc_tenant_from_call=_raising)
    for interceptor, expected in ((explicit, "acme"), (bare, None)):
        (reply,) = _calls(False, Sync(), [("Unary", [("x-tenant", "acme")])], interceptors=[interceptor])
        assert reply == {"shape": "Unary", "tenant": expected}
    assert "tenant_resolver_errors" not in autotrace.stats()
    assert _exported(rx, 2) == _tree("pk-acme", "acme", ("Unary",))
