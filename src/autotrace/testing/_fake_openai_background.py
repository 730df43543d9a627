"""The fake OpenAI server's background responses (``background=True``): accepted under an id of
their own, then fetched by it. ``GET /responses/{id}`` answers ``in_progress`` for a number of
polls, then the reply in its final status; ``POST /responses/{id}/cancel`` cancels it. A streamed
background request streams its events, ``response.created`` saying ``queued``, and its events
can be streamed again by ``GET /responses/{id}?stream=true&starting_after=N`` (the events after
sequence number N), as the API lets a dropped stream resume."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs


class _Background:
    """One background response: its final form, the polls left before it has it, its events."""

    __slots__ = ("events", "final", "polls")

    def __init__(self, final: dict[str, Any], polls: int, events: list[tuple[str, dict[str, Any]]]) -> None:
        self.final = final
        self.polls = polls
        self.events = events


class BackgroundResponses:
    """The background responses a fake server accepted, by id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: dict[str, _Background] = {}

    def accept(self, response: dict[str, Any], status: str, polls: int, events: Iterator[tuple[str, dict[str, Any]]],
               streamed: bool) -> dict[str, Any] | Iterator[Any]:
        """Accept ``response`` (its id replaced by the next background id) to finish in ``status``,
        with ``events`` (its stream, made from ``response``) to stream by its id: answered
        ``queued`` with no output, or ``streamed``."""
        with self._lock:
            response["id"] = f"resp_bg_{len(self._found) + 1}"
            final = {**response, "status": status}
            if status == "failed":
                final.update(output=[], error={"code": "server_error", "message": "The model failed."})
            kept = list(events)
            kind, first = kept[0]  # a background stream starts queued
            kept[0] = (kind, {**first, "response": {**first["response"], "status": "queued"}})
            self._found[response["id"]] = _Background(final, polls, kept)
        if streamed:
            return iter(kept)
        return {**response, "status": "queued", "output": [], "usage": None}

    def fetch(self, response_id: str, query: str, cancel: bool) -> dict[str, Any] | Iterator[Any] | None:
        """What a retrieve (a stream of the events after ``starting_after`` when the query asks for
        a stream) or a cancel of ``response_id`` gets; None for an unknown id."""
        asked = parse_qs(query)
        with self._lock:
            found = self._found.get(response_id)
            if found is None:
                return None
            if not cancel and asked.get("stream") == ["true"]:
                after = int(asked.get("starting_after", ["-1"])[0])
                found.polls = 0
                return iter([event for event in found.events if event[1]["sequence_number"] > after])
            if cancel and found.polls > 0:
                found.final, found.polls = {**found.final, "status": "cancelled", "output": [], "usage": None}, 0
            elif found.polls > 0:
                found.polls -= 1
                return {**found.final, "status": "in_progress", "output": [], "usage": None}
            found.polls = 0
            return found.final
