"""Which services an outgoing gRPC call tells the tenant (``tenant_baggage``): every one by default,
only the channel targets the setting names, or none. Real grpcio servers on loopback that record
the metadata they get; channels made by the application after ``install()`` (so patched) and ones
instrumented by hand."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import grpc.aio
import pytest

import autotrace
from autotrace.config import ConfigError, load_settings
from autotrace.integrations.grpc import instrument_channel
from tests import grpc_services as svc

METHOD = svc.RECORDED_METHOD


@pytest.fixture
def recorder() -> Iterator[svc.MetadataRecorder]:
    server = svc.MetadataRecorder()
    yield server
    server.server.stop(0)


def _baggage(recorder: svc.MetadataRecorder) -> list[str | None]:
    """The baggage each call to ``recorder`` carried."""
    return [dict(seen).get("baggage") for seen in recorder.seen]


def _call(target: str) -> None:
    with grpc.insecure_channel(target) as channel, autotrace.tenant("acme"):
        channel.unary_unary(METHOD, **svc.CLIENT_KW)({})


@pytest.mark.parametrize(("setting", "tenant_sent"), [
    (None, True),  # the default: every target
    ("all", True),
    ("127.0.0.1:*", True),
    ("rag-service:*, *.internal:*", False),
    ("none", False),
    (False, False),
    (["127.0.0.*:*"], True),
])
def test_the_tenant_travels_only_to_the_targets_the_setting_names(tmp_path: Any, recorder: svc.MetadataRecorder,
                                                                   setting: Any, tenant_sent: bool) -> None:
    options = {} if setting is None else {"tenant_baggage": setting}
    traced = svc.install(tmp_path, **options)
    _call(f"127.0.0.1:{recorder.port}")
    (seen,) = [dict(pairs) for pairs in recorder.seen]
    assert seen.get("baggage") == ("autotrace.tenant=acme" if tenant_sent else None)
    (client,) = traced.records()
    assert (client["name"], client["tenant"]) == (METHOD[1:], "acme")  # traced and routed as before
    assert seen["traceparent"].split("-")[1] == client["trace_id"]  # the trace still travels


def test_the_variable_names_the_targets(tmp_path: Any, recorder: svc.MetadataRecorder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOTRACE_TENANT_BAGGAGE", "rag-service:*,127.0.0.1:*")
    svc.install(tmp_path)
    _call(f"127.0.0.1:{recorder.port}")
    _call(f"ipv4:127.0.0.1:{recorder.port}")  # the same address under a resolver scheme: listed
    _call(f"localhost:{recorder.port}")  # the same server by another name: not listed
    assert _baggage(recorder) == ["autotrace.tenant=acme", "autotrace.tenant=acme", None]


def test_other_baggage_still_travels_where_the_tenant_does_not(tmp_path: Any, recorder: svc.MetadataRecorder) -> None:
    svc.install(tmp_path, tenant_baggage="none")
    with grpc.insecure_channel(f"127.0.0.1:{recorder.port}") as channel, autotrace.tenant("acme"):
        channel.unary_unary(METHOD, **svc.CLIENT_KW)({}, metadata=[("baggage", "userId=alice")])
    assert _baggage(recorder) == ["userId=alice"]


def test_an_aio_channel_follows_the_setting(tmp_path: Any, recorder: svc.MetadataRecorder) -> None:
    svc.install(tmp_path, tenant_baggage="localhost:*")

    async def call(target: str) -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            with autotrace.tenant("acme"):
                await channel.unary_unary(METHOD, **svc.CLIENT_KW)({})

    asyncio.run(call(f"localhost:{recorder.port}"))
    asyncio.run(call(f"127.0.0.1:{recorder.port}"))
    assert _baggage(recorder) == ["autotrace.tenant=acme", None]


def test_a_channel_instrumented_by_hand_needs_its_target_to_be_told_the_tenant(tmp_path: Any,
                                                                              recorder: svc.MetadataRecorder) -> None:
    target = f"127.0.0.1:{recorder.port}"
    autotrace.install(local_store="on", local_store_path=tmp_path / "e.db", integrations=(),  # nothing patched
                      tenant_baggage="127.0.0.1:*")
    for traced_channel in (lambda c: instrument_channel(c), lambda c: instrument_channel(c, target)):
        with grpc.insecure_channel(target) as channel, autotrace.tenant("acme"):
            traced_channel(channel).unary_unary(METHOD, **svc.CLIENT_KW)({})
    # without its target the channel cannot be matched: the tenant is not sent (fails closed)
    assert _baggage(recorder) == [None, "autotrace.tenant=acme"]
    assert all("traceparent" in dict(seen) for seen in recorder.seen)


@pytest.mark.parametrize(("given", "read"), [
    ("ALL", ("*",)), ("none", ()), ("off", ()), (True, ("*",)), (" a:*, ,b:1 ", ("a:*", "b:1")),
    (("x:*",), ("x:*",)),
])
def test_the_setting_is_read_as_documented(given: Any, read: tuple[str, ...]) -> None:
    assert load_settings({"tenant_baggage": given}, env={}).tenant_baggage == read
    assert load_settings({}, env={}).tenant_baggage == ("*",)


@pytest.mark.parametrize("given", [3, [1], {"a": 1}])
def test_a_setting_that_names_no_targets_is_a_config_error(given: Any) -> None:
    with pytest.raises(ConfigError, match="tenant_baggage"):
        load_settings({"tenant_baggage": given}, env={})
