"""A steered response whose successor cannot be created (``response.steer.failed`` with
``successor_creation_failed``): no successor follows, so the lane's next ``response.created``
answers the next request sent, and the failed steering input is no successor's input. Real SDK
over a real WebSocket to the loopback fake."""

from __future__ import annotations

from typing import Any

import openai
import pytest

import autotrace
from autotrace.testing._fake_openai_websocket import FakeResponsesWebSocket
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MODEL = "gpt-4.1-2025-04-14"


def _until(connection: Any, kind: str) -> list[Any]:
    events = []
    for event in connection:
        events.append(event)
        if event.type == kind:
            return events
    return events


def test_after_a_failed_successor_each_request_keeps_its_own_reply(traced: Traced,
                                                                    ws: FakeResponsesWebSocket) -> None:
    ws.script(reply="alpha beta gamma delta", usage=(1000, 100), model=MODEL, chunks=4)
    ws.script(reply="second reply", usage=(1000, 100), model=MODEL)
    ws.script(reply="third reply", usage=(1000, 100), model=MODEL)
    ws.steer_after, ws.successor_fails = 5, True
    client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
    with autotrace.start_span("root") as root:
        with client.responses.connect() as connection:
            connection.response.create(model="gpt-4.1", input="first")
            events = []
            for event in connection:
                events.append(event)
                if len(events) == 5:
                    connection.response.steer(input="shorter please", previous_response_id="resp_ws_1")
                if event.type == "response.steer.failed":
                    break
            connection.response.create(model="gpt-4.1", input="second")
            events += _until(connection, "response.completed")
            connection.response.create(model="gpt-4.1", input="third")
            events += _until(connection, "response.completed")
    assert [e.type for e in events[5:8]] == ["response.steer.accepted", "response.incomplete",
                                            "response.steer.failed"]
    assert [e.response.id for e in events if e.type == "response.completed"] == ["resp_ws_2", "resp_ws_3"]
    records = traced.records()[1:]
    assert [(r["parent_id"], r["input"], r["output"], r["level"], r["metadata"].get("response_id"),
             "successor_of" in r["metadata"]) for r in records] == [
        (root.id, "first", "alpha beta ", "DEFAULT", "resp_ws_1", False),
        (root.id, "second", "second reply", "DEFAULT", "resp_ws_2", False),
        (root.id, "third", "third reply", "DEFAULT", "resp_ws_3", False)]
