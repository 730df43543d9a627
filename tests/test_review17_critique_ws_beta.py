"""``client.beta.responses.connect()``: the beta Responses API's WebSocket mode (its own connection
classes, the same protocol) is traced as ``client.responses.connect()`` is, as the beta Responses
API's HTTP calls are. Real SDK over a real WebSocket to the loopback fake."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

import autotrace
from autotrace.testing._fake_openai_websocket import FakeResponsesWebSocket
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("openai")

MODEL = "gpt-4.1-2025-04-14"


@pytest.mark.parametrize("how", ["sync", "async"])
def test_a_beta_connection_s_response_is_a_generation(traced: Traced, ws: FakeResponsesWebSocket, how: str) -> None:
    ws.script(reply="beta reply", usage=(1000, 100), model=MODEL)
    with autotrace.start_span("root") as root:
        if how == "sync":
            client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
            with client.beta.responses.connect() as connection:
                connection.response.create(model="gpt-4.1", input="hello")
                for event in connection:
                    if event.type == "response.completed":
                        break
        else:
            async def run() -> None:
                aclient = openai.AsyncOpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
                async with aclient.beta.responses.connect() as connection:
                    await connection.response.create(model="gpt-4.1", input="hello")
                    async for event in connection:
                        if event.type == "response.completed":
                            return

            asyncio.run(run())
    records = traced.records()
    assert shape(records) == [("span", "root", [("generation", "openai.responses", [])])]
    record = records[1]
    assert (record["parent_id"], record["level"], record["input"], record["output"], record["model"]) == (
        root.id, "DEFAULT", "hello", "beta reply", MODEL)
    assert (record["metadata"]["transport"], record["metadata"]["response_id"]) == ("websocket", "resp_ws_1")
    assert record["usage"]["total"] == 1100


def test_uninstall_takes_the_beta_wrappers_off(traced: Traced) -> None:
    from openai.resources.beta.responses.responses import AsyncResponsesConnection, ResponsesConnection

    methods: list[Any] = [ResponsesConnection.__dict__["parse_event"], AsyncResponsesConnection.__dict__["recv_bytes"]]
    assert all(hasattr(method, "__wrapped__") for method in methods)
    autotrace.uninstall()
    assert not any(hasattr(method, "__wrapped__") for method in (
        ResponsesConnection.__dict__["parse_event"], AsyncResponsesConnection.__dict__["recv_bytes"]))
