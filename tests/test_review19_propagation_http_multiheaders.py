"""``propagation.inject`` into a carrier that holds one header several times (aiohttp's
``CIMultiDict``, ``http.server``'s ``HTTPMessage``: a forwarded request that came with two
``baggage`` headers, which W3C makes one list) kept only the first value: the entries of the
others were lost, unsaid. Every value is now kept, as for gRPC metadata."""

from __future__ import annotations

import http.client
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

import autotrace
from autotrace import propagation
from tests.helpers import Traced

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
async def echo() -> AsyncIterator[str]:
    """A loopback aiohttp server answering with every trace header of the request it got."""

    async def handler(request: web.Request) -> web.Response:
        names = ("traceparent", "tracestate", "baggage")
        return web.json_response({name: request.headers.getall(name, []) for name in names})

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


async def test_forwarding_an_aiohttp_requests_repeated_baggage_keeps_every_entry(traced: Traced, echo: str) -> None:
    incoming = CIMultiDict([("Baggage", "user=jane"), ("traceparent", TRACEPARENT), ("baggage", "region=eu"),
                            ("BAGGAGE", "autotrace.tenant=evil")])
    with autotrace.tenant("acme"), autotrace.start_span("forward") as span:
        headers = propagation.inject(CIMultiDict(incoming), target="rag:8080", send_tenant=True)
        async with aiohttp.ClientSession() as session, session.get(echo, headers=headers) as response:
            got = await response.json()
    assert got == {"traceparent": [f"00-{span.trace_id}-{span.id}-01"], "tracestate": [],
                   "baggage": ["user=jane,region=eu,autotrace.tenant=acme"]}


def test_an_http_server_messages_repeated_baggage_keeps_every_entry(traced: Traced) -> None:
    message = http.client.HTTPMessage()
    message["Baggage"], message["traceparent"], message["baggage"] = "user=jane", TRACEPARENT, "region=eu"
    with autotrace.tenant("acme"), autotrace.start_span("forward") as span:
        propagation.inject(message, send_tenant=True)
    assert message.items() == [("traceparent", f"00-{span.trace_id}-{span.id}-01"),
                               ("baggage", "user=jane,region=eu,autotrace.tenant=acme")]
