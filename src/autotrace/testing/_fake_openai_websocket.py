"""A loopback WebSocket server speaking the Responses API's WebSocket mode as the real ``openai``
SDK's ``client.responses.connect()`` expects it: each ``response.create`` it receives is answered,
in the order received, with the events a streamed Responses call gets (``FakeOpenAI``'s, made from
the same scripts), under an id of its own (``resp_ws_1``, ...), each event carrying the request's
``stream_id`` when it gave one. A scripted error is an ``error`` event (with its HTTP status);
``drop_after`` closes the socket abnormally after that many events of the next response;
``together`` waits for that many requests and interleaves their events (their lanes' order kept).
``steer_after`` waits, after that many events of the next response, for the client's
``response.steer``: accepts it, ends the response ``incomplete`` (reason ``steered``, with the
usage scripted for it) and answers the steering input as an automatic successor (the next script),
or, with ``successor_fails``, with ``response.steer.failed`` (``successor_creation_failed``) instead.

``with FakeResponsesWebSocket() as ws: OpenAI(base_url=ws.base_url, api_key="x").responses.connect()``
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from typing import Any, Self

from websockets.sync.server import Server, ServerConnection, serve

from .fake_openai import FakeOpenAI, Script


class FakeResponsesWebSocket:
    """The server: ``script`` queues the next reply (``fake_openai.Script``'s fields)."""

    def __init__(self) -> None:
        self._replies = FakeOpenAI()  # only its scripts and its streamed Responses events
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        #: Every client event received, parsed, in order.
        self.received: list[dict[str, Any]] = []
        #: Close the socket (code 1011) after this many events of the next response (then reset).
        self.drop_after: int | None = None
        #: Requests to wait for before answering, their events interleaved.
        self.together = 1
        #: Wait for a ``response.steer`` after this many events of the next response (then reset).
        self.steer_after: int | None = None
        #: The steered response's successor cannot be created: ``response.steer.failed`` instead.
        self.successor_fails = False
        self._finals: dict[str, dict[str, Any]] = {}  # each response's final form, by id
        #: Sockets accepted so far (a reconnection opens another).
        self.connections = 0

    def script(self, **fields: Any) -> Self:
        self._replies.script(**fields)
        return self

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.socket.getsockname()[1]}/v1"

    def __enter__(self) -> Self:
        self._server = serve(self._serve, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._thread.join(10)

    def _serve(self, socket: ServerConnection) -> None:
        self.connections += 1
        asked: list[dict[str, Any]] = []
        for message in socket:
            event = json.loads(message)
            self.received.append(event)
            if event.get("type") != "response.create":
                continue
            asked.append(event)
            if len(asked) < self.together:
                continue
            answers = [self._answer(request) for request in asked]
            asked, started = [], {}
            for sent, reply in enumerate(_interleaved(answers)):
                if self.drop_after is not None and sent >= self.drop_after:
                    self.drop_after = None
                    socket.close(code=1011, reason="dropped")
                    return
                if self.steer_after is not None and sent >= self.steer_after:
                    self.steer_after = None
                    self._steered(socket, started)
                    break
                if reply["type"] == "response.created":
                    started = reply["response"]
                socket.send(json.dumps(reply))

    def _steered(self, socket: ServerConnection, running: dict[str, Any]) -> None:
        """Take the client's steering of ``running``: accepted, ``running`` ended ``incomplete``
        (reason ``steered``), and its automatic successor's events answering the steering input."""
        steer = json.loads(socket.recv())
        self.received.append(steer)
        accepted = {"id": "steer_1", "previous_response_id": running["id"]}
        socket.send(json.dumps({"type": "response.steer.accepted", "sequence_number": 0, "steer": accepted}))
        final = self._finals.pop(running["id"])  # its scripted usage; its output: what was streamed
        socket.send(json.dumps({"type": "response.incomplete", "sequence_number": 1, "response": {
            **final, "status": "incomplete", "incomplete_details": {"reason": "steered"}, "output": []}}))
        if self.successor_fails:
            socket.send(json.dumps({"type": "response.steer.failed", "sequence_number": 2, "steer": {
                **accepted, "input": steer["input"]}, "error": {
                "type": "invalid_request_error", "code": "successor_creation_failed", "message": "No successor."}}))
            return
        for reply in self._answer({"input": steer["input"], "previous_response_id": running["id"]}):
            socket.send(json.dumps(reply))

    def _answer(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The events answering one ``response.create``."""
        script = self._replies._next_script()
        lane = {"stream_id": request["stream_id"]} if "stream_id" in request else {}
        if script.error is not None:
            status, message = script.error
            yield {"type": "error", "status": status, **lane,
                   "error": {"type": "invalid_request_error", "code": "invalid_value", "message": message}}
            return
        response_id = f"resp_ws_{next(self._ids)}"
        body = {key: value for key, value in request.items() if key not in ("type", "stream_id")}
        events = self._replies._responses({**body, "stream": True}, script, script.chunks or 3)
        assert not isinstance(events, dict)
        events = list(events)
        self._finals[response_id] = {**events[-1][1]["response"], "id": response_id}
        for _, payload in events:
            if "response" in payload:
                payload = {**payload, "response": {**payload["response"], "id": response_id}}
            yield {**payload, **lane}


def _interleaved(answers: list[Iterator[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """The events of several answers, one of each in turn."""
    for round_ in itertools.zip_longest(*answers):
        yield from (event for event in round_ if event is not None)


__all__ = ["FakeResponsesWebSocket", "Script"]
