"""The Responses WebSocket mode driven hard from threads: several threads sending on one sync
connection, another thread reading; real SDK over a real WebSocket to the loopback fake."""

from __future__ import annotations

import threading
from typing import Any

import openai
import pytest

import autotrace
from autotrace.testing._fake_openai_websocket import FakeResponsesWebSocket
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

MODEL = "gpt-4.1-2025-04-14"


def test_a_sender_overtaken_on_the_wire_keeps_its_own_reply(traced: Traced, ws: FakeResponsesWebSocket) -> None:
    """Thread A starts its send first but is paused just before its frame reaches the socket
    (as a preempted thread is), while thread B sends: whichever frame goes out first is answered
    first, and each generation holds its own request's input, its own reply, under its own span."""
    ws.script(reply="first answered", usage=(1000, 100), model=MODEL)
    ws.script(reply="second answered", usage=(1000, 100), model=MODEL)
    client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
    connection = client.responses.connect().enter()
    socket_send = connection._connection.send
    a_paused, b_sent = threading.Event(), threading.Event()

    def send(message: Any, *args: Any, **kwargs: Any) -> Any:  # the real send, A's delayed
        if '"from a"' in str(message):
            a_paused.set()
            b_sent.wait(1)  # B sends meanwhile, unless it waits for A
        result = socket_send(message, *args, **kwargs)
        if '"from b"' in str(message):
            b_sent.set()
        return result

    connection._connection.send = send
    spans: dict[str, Any] = {}

    def sender(name: str) -> None:
        with autotrace.start_span(name) as span:
            spans[name] = span
            connection.response.create(model="gpt-4.1", input=f"from {name}")

    a = threading.Thread(target=sender, args=("a",))
    a.start()
    a_paused.wait(5)
    b = threading.Thread(target=sender, args=("b",))
    b.start()
    b.join(5)
    a.join(5)
    events = []
    for event in connection:
        events.append(event)
        if sum(e.type == "response.completed" for e in events) == 2:
            break
    connection.close()
    order = [e["input"] for e in ws.received]  # the server answers in the order received
    assert sorted(order) == ["from a", "from b"]
    generations = {r["input"]: r for r in traced.records() if r["type"] == "generation"}
    assert {name: (r["output"], r["parent_id"], r["metadata"]["response_id"], r["level"])
            for name, r in generations.items()} == {
        order[0]: ("first answered", spans[order[0][-1]].id, "resp_ws_1", "DEFAULT"),
        order[1]: ("second answered", spans[order[1][-1]].id, "resp_ws_2", "DEFAULT")}
