"""Second review of replay: calls made inside spans that other OpenTelemetry instrumentations (or the
application's own tracer) start, ``--messages-file`` for a Responses API generation, a chat stream
recorded as failing part way, and recordings whose shape is unusual (a parent-id cycle, a tree
deeper than Python's recursion limit). OpenAI calls go through the real SDK to a loopback server
(the project's fake, or one that breaks its streams off)."""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry import trace

import autotrace
from autotrace import _internal
from autotrace.replay import first_difference, parse_overrides, replay
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("openai")

CALLS: Counter[str] = Counter()
ASK = [{"role": "user", "content": "where is my order?"}]


@autotrace.traced_tool(name="lookup_order")
def lookup_order(order_id: str) -> dict[str, str]:
    CALLS["lookup_order"] += 1
    return {"order_id": order_id, "status": "packed"}


def _client(fake: FakeOpenAI) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0)


def _only_trace(traced: Traced) -> list[dict[str, Any]]:
    (summary,) = autotrace.local_store().traces() if autotrace.flush(5) else []
    return traced.trace(summary["trace_id"])


def served_request(client: openai.OpenAI) -> str:
    """A request as a web framework's OpenTelemetry instrumentation traces it: a server span (no
    observation) around the pipeline, which makes a plain HTTP client span before its calls."""
    tracer = trace.get_tracer("web-framework")
    with tracer.start_as_current_span("POST /chat"):
        with tracer.start_as_current_span("GET http://kb.internal/articles"):
            pass
        intent = client.chat.completions.create(model="gpt-4o-mini", messages=ASK).choices[0].message.content
        order = lookup_order("o-7")
        with autotrace.start_generation("answer", model="m") as gen:
            gen.set_output(f"{intent}: {order['status']}")
        return str(intent)


def test_calls_inside_another_instrumentations_spans_are_frozen(traced: Traced) -> None:
    """Spans started by other instrumentations are recorded in the trace but never seen by the
    replay when they start: a call under one, or after one, is still matched and frozen."""
    CALLS.clear()
    with FakeOpenAI() as fake:
        client = _client(fake)
        fake.script(reply="shipping")
        assert served_request(client) == "shipping"
        original = _only_trace(traced)
        at = next(r["id"] for r in original if r["name"] == "answer")
        before = len(fake.requests)
        result = replay(original, at, served_request, client)
        assert len(fake.requests) == before  # the chat call was served from the recording
    assert (result.result, result.reached, CALLS["lookup_order"]) == ("shipping", True, 1)
    records = traced.trace(result.trace_id)
    assert shape(records) == shape(original)
    assert [r["name"] for r in records if (r["metadata"] or {}).get("replay") == "frozen"] == [
        "openai.chat", "lookup_order"]


def responses_turn(client: openai.OpenAI) -> str:
    with autotrace.start_chain("turn"):
        return client.responses.create(model="gpt-4o-mini", input=[
            {"role": "user", "content": "where is my order?"}]).output_text


def test_a_messages_file_replaces_the_input_of_a_responses_generation(traced: Traced, tmp_path: Path) -> None:
    """``--messages-file`` replaces the messages of the generation replayed live: for a Responses
    API call they are its ``input``."""
    messages = [{"role": "user", "content": "and my refund?"}]
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(messages), encoding="utf-8")
    with FakeOpenAI() as fake:
        client = _client(fake)
        responses_turn(client)
        original = _only_trace(traced)
        at = next(r["id"] for r in original if r["type"] == "generation")
        replay(original, at, responses_turn, client, overrides=parse_overrides(["model=gpt-4o"], str(path)))
        sent = fake.requests[-1]["body"]
    assert (sent["model"], sent["input"]) == ("gpt-4o", messages)


def _record(index: int, parent: int | None, output: Any = None) -> dict[str, Any]:
    return {"id": f"{index:016x}", "parent_id": None if parent is None else f"{parent:016x}", "trace_id": "t" * 32,
            "type": "span", "name": f"step-{index}", "start_ns": index, "end_ns": 10_000 - index, "output": output,
            "metadata": None, "tenant": None}


def test_the_first_difference_of_trees_deeper_than_the_recursion_limit() -> None:
    chain = [_record(i, i - 1 if i else None) for i in range(3000)]
    changed = [*chain[:-1], _record(2999, 2998, output="changed")]
    assert first_difference(chain, chain) is None
    assert first_difference(chain, changed) == ".".join(["1"] * 3000) + ': span \'step-2999\' output null became "changed"'


def test_a_recording_with_a_parent_id_cycle_does_not_hang_the_replay() -> None:
    """A chosen observation whose ancestors loop (ids that collide, a corrupted store): the replay
    starts, and the run simply does not reach it."""
    records = [_record(0, None), _record(1, 2), _record(2, 1)]
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(replay(records, records[1]["id"], lambda: "ran")),
                              daemon=True)
    worker.start()
    worker.join(60)  # a guard against a hang, never a measure of speed
    assert [(r.result, r.reached) for r in outcome] == [("ran", False)]


class _CutStream(BaseHTTPRequestHandler):
    """A loopback chat API whose streams break off: two chunks, then the connection is dropped."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests += 1  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
        for delta in ({"role": "assistant", "content": ""}, {"content": "Your order "}):
            data = b"data: " + json.dumps({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                                          ).encode() + b"\n\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True


def cut_turn(client: openai.OpenAI) -> str:
    with autotrace.start_chain("turn"):
        text = ""
        try:
            for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=ASK, stream=True):
                text += chunk.choices[0].delta.content or "" if chunk.choices else ""
        except openai.APIError as error:
            text += f" [{type(error).__name__}]"
        with autotrace.start_generation("answer", model="m") as gen:
            gen.set_output(text)
        return text


def test_a_chat_stream_that_failed_part_way_runs_live(traced: Traced) -> None:
    """The recording holds what the stream gave before it failed: served, it would be a whole
    reply, and the program would leave the path the recorded run took. It runs live, as a failed
    Responses API reply does."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CutStream)
    server.requests = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="k", max_retries=0)
        assert cut_turn(client) == "Your order  [APIConnectionError]"
        original = _only_trace(traced)
        assert [(r["level"], r["output"]) for r in original if r["name"] == "openai.chat"] == [
            ("ERROR", {"role": "assistant", "content": "Your order "})]
        live = _internal.stats().get("openai.replay_live", 0)
        result = replay(original, next(r["id"] for r in original if r["name"] == "answer"), cut_turn, client)
    finally:
        server.shutdown()
        server.server_close()
    assert (result.result, server.requests, _internal.stats().get("openai.replay_live", 0) - live) == (
        "Your order  [APIConnectionError]", 2, 1)
