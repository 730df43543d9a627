"""``ConnectionManager.send`` once its connection is open: the SDK queues the event on the
connection's send queue and flushes it before the connection's next send, so its request is
answered first. Real SDK, sync and async, over a real WebSocket to the loopback fake."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import openai
import pytest

import autotrace
from autotrace.testing._fake_openai_websocket import FakeResponsesWebSocket
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("openai")

MODEL = "gpt-4.1-2025-04-14"
QUEUED = {"type": "response.create", "model": "gpt-4.1", "input": "via manager"}


def _completed(events: list[Any]) -> dict[str, str]:
    """The text of each completed response, by id."""
    return {e.response.id: e.response.output[0].content[0].text for e in events if e.type == "response.completed"}


@pytest.mark.parametrize("how", ["sync", "async"])
def test_a_request_queued_on_an_open_connection_keeps_its_own_reply(traced: Traced, ws: FakeResponsesWebSocket,
                                                                   how: str) -> None:
    ws.script(reply="manager reply", usage=(1000, 100), model=MODEL)
    ws.script(reply="direct reply", usage=(1000, 100), model=MODEL)
    with autotrace.start_span("root") as root:
        if how == "sync":
            client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
            manager = client.responses.connect()
            with manager as connection:
                with autotrace.start_span("queueing") as queueing:
                    manager.send(QUEUED)
                connection.response.create(model="gpt-4.1", input="direct")
                events = []
                for event in connection:
                    events.append(event)
                    if len(_completed(events)) == 2:
                        break
        else:
            async def run() -> tuple[list[Any], Any]:
                aclient = openai.AsyncOpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
                amanager = aclient.responses.connect()
                seen = []
                async with amanager as connection:
                    with autotrace.start_span("queueing") as span:
                        amanager.send(QUEUED)
                    await connection.response.create(model="gpt-4.1", input="direct")
                    async for event in connection:
                        seen.append(event)
                        if len(_completed(seen)) == 2:
                            break
                return seen, span

            events, queueing = asyncio.run(run())
    gc.collect()  # no request is left waiting for a connection that never opened
    assert [r["input"] for r in ws.received] == ["via manager", "direct"]
    assert _completed(events) == {"resp_ws_1": "manager reply", "resp_ws_2": "direct reply"}
    records = traced.records()
    assert shape(records) == [("span", "root", [("span", "queueing", [("generation", "openai.responses", [])]),
                                                 ("generation", "openai.responses", [])])]
    queued, direct = records[2], records[3]
    assert [(r["parent_id"], r["input"], r["output"], r["level"], r["status_message"], r["metadata"]["response_id"],
             "successor_of" in r["metadata"]) for r in (queued, direct)] == [
        (queueing.id, "via manager", "manager reply", "DEFAULT", None, "resp_ws_1", False),
        (root.id, "direct", "direct reply", "DEFAULT", None, "resp_ws_2", False)]
