"""The Responses API's WebSocket mode (``client.responses.connect()``): each ``response.create``
is one generation, under the span current when it was sent, with its sender's tenant, from the
send to its final or error event; a socket closed or dropped with responses in flight ends them
WARNING. Real SDK, sync and async, over a real WebSocket to the loopback fake."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import openai
import pytest
from websockets.exceptions import ConnectionClosedError

import autotrace
from autotrace.integrations.openai import _websocket, _websocket_lanes
from autotrace.testing._fake_openai_websocket import FakeResponsesWebSocket
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("openai")

MODEL = "gpt-4.1-2025-04-14"
USAGE = {"input": 1000, "output": 100, "total": 1100, "input_cached_tokens": 0, "output_reasoning_tokens": 0}
COST = {"input": 0.002, "output": 0.0008, "total": 0.0028}


def _texts(events: list[Any]) -> dict[str, str]:
    """The text each response streamed, by response id (as the caller reads it)."""
    texts: dict[str, str] = {}
    current: dict[Any, str] = {}
    for event in events:
        lane = getattr(event, "stream_id", None)
        if event.type == "response.created":
            current[lane] = event.response.id
            texts[event.response.id] = ""
        elif event.type == "response.output_text.delta":
            texts[current[lane]] += event.delta
    return texts


def _read(connection: Any, finals: int) -> list[Any]:
    events = []
    for event in connection:
        events.append(event)
        if event.type in ("response.completed", "error"):
            finals -= 1
            if not finals:
                return events
    return events


def _generation(record: dict[str, Any], parent: str, output: str, response_id: str, **request: Any) -> None:
    """``record`` is the generation of a completed response ``response_id`` under ``parent``."""
    assert (record["type"], record["name"], record["parent_id"], record["level"]) == (
        "generation", "openai.responses", parent, "DEFAULT")
    assert (record["input"], record["output"], record["model"]) == (request["input"], output, MODEL)
    assert (record["usage"], record["cost"]) == (USAGE, pytest.approx(COST))
    assert record["model_parameters"] == request.get("parameters")
    metadata = {key: value for key, value in record["metadata"].items() if key != "base_url"}
    assert metadata == {"provider": "127.0.0.1", "operation": "responses", "finish_reason": "completed",
                        "response_id": response_id, "transport": "websocket", **request.get("metadata", {})}


def test_two_responses_on_one_sync_connection_are_two_generations(traced: Traced,
                                                                  ws: FakeResponsesWebSocket) -> None:
    """Both requests sent before either reply is read: each reply is matched to its request, in
    the order the lane runs them; what is sent and what the caller reads are the SDK's own."""
    ws.script(reply="first reply", usage=(1000, 100), model=MODEL)
    ws.script(reply="second reply", usage=(1000, 100), model=MODEL)
    client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
    with autotrace.tenant("acme"), autotrace.start_span("chat") as root:
        with client.responses.connect() as connection:
            connection.response.create(model="gpt-4.1", input="one", temperature=0.2)
            connection.response.create(model="gpt-4.1", input="two", instructions="be brief")
            events = _read(connection, 2)
    assert _texts(events) == {"resp_ws_1": "first reply", "resp_ws_2": "second reply"}
    assert ws.received == [
        {"type": "response.create", "model": "gpt-4.1", "input": "one", "temperature": 0.2},
        {"type": "response.create", "model": "gpt-4.1", "input": "two", "instructions": "be brief"}]
    records = traced.records()
    assert shape(records) == [("span", "chat", [("generation", "openai.responses", []),
                                                 ("generation", "openai.responses", [])])]
    first, second = records[1:]
    _generation(first, root.id, "first reply", "resp_ws_1", input="one", parameters={"temperature": 0.2})
    _generation(second, root.id, "second reply", "resp_ws_2",
                input={"instructions": "be brief", "input": "two"})
    assert {r["tenant"] for r in records} == {"acme"}
    assert {r["trace_id"] for r in records} == {root.trace_id}


async def test_async_senders_on_two_lanes_keep_their_own_span_and_tenant(traced: Traced,
                                                                         ws: FakeResponsesWebSocket) -> None:
    """Two tasks, each in its own tenant and span, send on one connection's two lanes
    (``stream_id``) at once, and one reader reads the interleaved events: each generation is its
    sender's, with its own lane's reply."""
    ws.together = 2
    ws.script(reply="alpha beta gamma", usage=(1000, 100), model=MODEL)
    ws.script(reply="one two three", usage=(1000, 100), model=MODEL)
    client = openai.AsyncOpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
    roots: dict[str, Any] = {}

    async def send(tenant: str, lane: str, text: str) -> None:
        with autotrace.tenant(tenant), autotrace.start_span(f"task-{tenant}") as span:
            roots[tenant] = span
            await connection.response.create(model="gpt-4.1", input=text, stream_id=lane)

    async with client.responses.connect() as connection:
        await asyncio.gather(send("acme", "a", "first"), send("globex", "b", "second"))
        events = []
        async for event in connection:
            events.append(event)
            if sum(e.type == "response.completed" for e in events) == 2:
                break
    lanes = [request["stream_id"] for request in ws.received]  # answered in the order received
    ids, replies = {lane: f"resp_ws_{i}" for i, lane in enumerate(lanes, 1)}, dict(
        zip(lanes, ["alpha beta gamma", "one two three"], strict=True))
    assert [e.stream_id for e in events[:2]] == lanes  # interleaved
    assert _texts(events) == {ids[lane]: replies[lane] for lane in lanes}
    by_parent = {r["parent_id"]: r for r in traced.records() if r["type"] == "generation"}
    acme, globex = by_parent[roots["acme"].id], by_parent[roots["globex"].id]
    _generation(acme, roots["acme"].id, replies["a"], ids["a"], input="first", metadata={"stream_id": "a"})
    _generation(globex, roots["globex"].id, replies["b"], ids["b"], input="second", metadata={"stream_id": "b"})
    assert (acme["tenant"], acme["trace_id"]) == ("acme", roots["acme"].trace_id)
    assert (globex["tenant"], globex["trace_id"]) == ("globex", roots["globex"].trace_id)


def test_an_error_event_ends_its_request_in_error_and_the_next_one_still_matches(
        traced: Traced, ws: FakeResponsesWebSocket) -> None:
    ws.script(error=(400, "The model 'nope' does not exist."))
    ws.script(reply="fine", usage=(1000, 100), model=MODEL)
    client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
    with autotrace.start_span("root") as root:
        with client.responses.connect() as connection:
            connection.response.create(model="nope", input="a")
            connection.response.create(model="gpt-4.1", input="b")
            events = _read(connection, 2)
    assert [e.type for e in events][:2] == ["error", "response.created"]
    failed, fine = traced.records()[1:]
    assert (failed["name"], failed["parent_id"], failed["level"], failed["status_message"]) == (
        "openai.responses", root.id, "ERROR", "invalid_value: The model 'nope' does not exist.")
    assert (failed["input"], failed["output"], failed["usage"], failed["error"]) == ("a", None, None, True)
    _generation(fine, root.id, "fine", "resp_ws_1", input="b")


@pytest.mark.parametrize("how", ["sync", "async"])
def test_a_connection_dropped_mid_response_ends_it_warning(traced: Traced, ws: FakeResponsesWebSocket,
                                                           how: str) -> None:
    """The socket drops after the second text delta: the caller's loop raises the SDK's error,
    the generation ends WARNING with the text streamed so far."""
    ws.script(reply="alpha beta gamma delta", usage=(1000, 100), model=MODEL, chunks=4)
    ws.drop_after = 5  # created, item added, part added, two deltas
    with autotrace.start_span("root") as root:
        if how == "sync":
            client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
            with pytest.raises(ConnectionClosedError), client.responses.connect() as connection:
                connection.response.create(model="gpt-4.1", input="a")
                events = []
                for event in connection:
                    events.append(event)
        else:
            async def run() -> list[Any]:
                aclient = openai.AsyncOpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
                seen = []
                with pytest.raises(ConnectionClosedError):
                    async with aclient.responses.connect() as connection:
                        await connection.response.create(model="gpt-4.1", input="a")
                        async for event in connection:
                            seen.append(event)
                return seen

            events = asyncio.run(run())
    assert len(events) == 5
    (record,) = traced.records()[1:]
    assert (record["parent_id"], record["level"], record["status_message"]) == (root.id, "WARNING",
                                                                                 _websocket.LOST)
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert (streamed, record["output"]) == ("alpha beta ", "alpha beta ")
    assert (record["model"], record["usage"], record["input"]) == (MODEL, None, "a")


def test_a_connection_closed_with_responses_in_flight_ends_them_warning(traced: Traced,
                                                                        ws: FakeResponsesWebSocket) -> None:
    ws.script(reply="never read", usage=(1000, 100), model=MODEL)
    client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
    with autotrace.start_span("root") as root:
        with client.responses.connect() as connection:
            connection.response.create(model="gpt-4.1", input="a")
    (record,) = traced.records()[1:]
    assert (record["parent_id"], record["level"], record["status_message"], record["input"]) == (
        root.id, "WARNING", _websocket.CLOSED, "a")


def test_requests_beyond_the_bound_are_matched_not_recorded(traced: Traced, ws: FakeResponsesWebSocket,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """At most ``MAX_IN_FLIGHT`` generations per connection: the request beyond is counted, and
    its reply goes to no other request's generation."""
    monkeypatch.setattr(_websocket_lanes, "MAX_IN_FLIGHT", 1)
    ws.script(reply="kept", usage=(1000, 100), model=MODEL)
    ws.script(reply="not recorded", usage=(1000, 100), model=MODEL)
    ws.script(reply="kept again", usage=(1000, 100), model=MODEL)
    before = autotrace.stats().get("openai.websocket_untraced", 0)
    client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
    with autotrace.start_span("root") as root:
        with client.responses.connect() as connection:
            connection.response.create(model="gpt-4.1", input="a")
            connection.response.create(model="gpt-4.1", input="b")
            _read(connection, 2)
            connection.response.create(model="gpt-4.1", input="c")  # one in flight again: recorded
            _read(connection, 1)
    first, third = traced.records()[1:]
    _generation(first, root.id, "kept", "resp_ws_1", input="a")
    _generation(third, root.id, "kept again", "resp_ws_3", input="c")
    assert autotrace.stats().get("openai.websocket_untraced", 0) - before == 1


def test_a_reconnection_ends_the_response_in_flight_and_the_next_one_records(
        traced: Traced, ws: FakeResponsesWebSocket) -> None:
    """With ``on_reconnecting`` the SDK reconnects when the socket drops: the response in flight is
    lost with the old socket (WARNING), a request on the new socket is recorded as usual."""
    ws.script(reply="alpha beta gamma", usage=(1000, 100), model=MODEL)
    ws.script(reply="after", usage=(1000, 100), model=MODEL)
    ws.drop_after = 3
    client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)

    def reconnecting(event: Any) -> None:  # queued while reconnecting, sent on the new socket
        connection.response.create(model="gpt-4.1", input="b")

    with autotrace.start_span("root") as root:
        with client.responses.connect(on_reconnecting=reconnecting, initial_delay=0.01,
                                      max_delay=0.01) as connection:
            connection.response.create(model="gpt-4.1", input="a")
            events = _read(connection, 1)
    assert ws.connections == 2
    assert _texts(events) == {"resp_ws_1": "", "resp_ws_2": "after"}  # the old socket's three events, then b's
    lost, after = traced.records()[1:]
    assert (lost["input"], lost["level"], lost["status_message"], lost["usage"]) == (
        "a", "WARNING", _websocket.LOST, None)
    _generation(after, root.id, "after", "resp_ws_2", input="b")


def test_a_steered_response_and_its_automatic_successor_are_two_generations(
        traced: Traced, ws: FakeResponsesWebSocket) -> None:
    """``response.steer`` mid-response: the response ends ``incomplete`` (reason ``steered``),
    billed, with what it streamed; the server's automatic successor (no ``response.create``) is one
    more generation beside it, its input the steering input."""
    ws.script(reply="alpha beta gamma delta", usage=(1000, 100), model=MODEL, chunks=4)
    ws.script(reply="steered reply", usage=(1000, 100), model=MODEL)
    ws.steer_after = 5  # created, item added, part added, two deltas
    client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
    with autotrace.tenant("acme"), autotrace.start_span("root") as root:
        with client.responses.connect() as connection:
            connection.response.create(model="gpt-4.1", input="a")
            events = []
            for event in connection:
                events.append(event)
                if len(events) == 5:
                    connection.response.steer(input="shorter please", previous_response_id="resp_ws_1")
                if event.type == "response.completed":
                    break
    assert [e.type for e in events[5:8]] == ["response.steer.accepted", "response.incomplete", "response.created"]
    steered, successor = traced.records()[1:]
    assert (steered["input"], steered["output"], steered["level"], steered["usage"]) == (
        "a", "alpha beta ", "DEFAULT", USAGE)
    assert (steered["metadata"]["finish_reason"], steered["metadata"]["incomplete_reason"]) == (
        "incomplete", "steered")
    _generation(successor, root.id, "steered reply", "resp_ws_2", input="shorter please",
                metadata={"successor_of": "resp_ws_1"})
    assert (successor["tenant"], successor["trace_id"], successor["model_parameters"]) == (
        "acme", root.trace_id, None)


def test_uninstall_takes_the_wrappers_off_and_install_puts_them_back(traced: Traced, tmp_path: Any) -> None:
    from openai._websocket_connection import WebSocketConnectionBase
    from openai.resources.responses.responses import AsyncResponsesConnection, ResponsesConnection

    methods = (lambda: ResponsesConnection.__dict__["parse_event"],
               lambda: AsyncResponsesConnection.__dict__["recv_bytes"],
               lambda: WebSocketConnectionBase.__dict__["send_raw"])
    assert all(hasattr(method(), "__wrapped__") for method in methods)
    autotrace.uninstall()
    assert not any(hasattr(method(), "__wrapped__") for method in methods)
    autotrace.install(local_store="on", local_store_path=tmp_path / "again.db", integrations=("openai",))
    assert all(hasattr(method(), "__wrapped__") for method in methods)


def test_a_failure_in_tracing_changes_nothing_the_caller_sends_or_reads(
        traced: Traced, ws: FakeResponsesWebSocket, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the request fails: the generation is recorded without them; reading an event
    fails: the caller still gets every event; both counted."""
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("broken")

    ws.script(reply="fine", usage=(1000, 100), model=MODEL)
    monkeypatch.setattr(_websocket_lanes._extract, "request_fields", broken)
    monkeypatch.setattr(_websocket_lanes.Connection, "received", broken)
    before = autotrace.stats().get("internal_errors.openai.websocket", 0)
    client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
    with autotrace.start_span("root") as root:
        with client.responses.connect() as connection:
            connection.response.create(model="gpt-4.1", input="a")
            events = _read(connection, 1)
    assert _texts(events) == {"resp_ws_1": "fine"}
    assert ws.received == [{"type": "response.create", "model": "gpt-4.1", "input": "a"}]
    (record,) = traced.records()[1:]
    assert (record["name"], record["parent_id"], record["input"], record["level"], record["status_message"]) == (
        "openai.responses", root.id, None, "WARNING", _websocket.CLOSED)  # no event read: ended by the close
    assert autotrace.stats().get("internal_errors.openai.websocket", 0) - before == 1 + len(events)


def test_a_request_queued_before_the_connection_opens_is_matched_first(traced: Traced,
                                                                       ws: FakeResponsesWebSocket) -> None:
    """``connect().send(...)`` before entering: the SDK sends it first when the connection opens;
    its reply is its own, not the reply of the request sent on the connection after."""
    ws.script(reply="queued reply", usage=(1000, 100), model=MODEL)
    ws.script(reply="direct reply", usage=(1000, 100), model=MODEL)
    client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
    with autotrace.start_span("root") as root:
        manager = client.responses.connect()
        with autotrace.start_span("queueing") as queueing:
            manager.send({"type": "response.create", "model": "gpt-4.1", "input": "queued"})
        with manager as connection:
            connection.response.create(model="gpt-4.1", input="direct")
            events = _read(connection, 2)
    assert _texts(events) == {"resp_ws_1": "queued reply", "resp_ws_2": "direct reply"}
    records = traced.records()
    assert shape(records) == [("span", "root", [("span", "queueing", [("generation", "openai.responses", [])]),
                                                 ("generation", "openai.responses", [])])]
    _generation(records[2], queueing.id, "queued reply", "resp_ws_1", input="queued")
    _generation(records[3], root.id, "direct reply", "resp_ws_2", input="direct")
    assert records[2]["metadata"]["base_url"] == records[3]["metadata"]["base_url"] != ""


def test_a_request_queued_for_a_connection_never_opened_ends_warning(traced: Traced,
                                                                     ws: FakeResponsesWebSocket) -> None:
    client = openai.OpenAI(base_url=ws.base_url, api_key="sk-test", max_retries=0)
    with autotrace.start_span("root") as root:
        manager = client.responses.connect()
        manager.send({"type": "response.create", "model": "gpt-4.1", "input": "queued"})
    del manager
    gc.collect()
    (record,) = traced.records()[1:]
    assert (record["parent_id"], record["input"], record["level"], record["status_message"]) == (
        root.id, "queued", "WARNING", _websocket_lanes.NEVER_SENT)
