"""Background Responses: ``responses.create(background=True)`` returns at once, ``queued``, with
no output and no usage (its generation records the request); the reply is fetched later by its id
(``responses.retrieve``, or ``responses.cancel``). Fetching is no generation of its own: a poll
loop would make one per poll.

The ids of the background responses created and traced in this process are remembered (``created``),
at most ``MAX_PENDING``, the oldest forgotten first (counted as ``openai.background_forgotten``).
The first retrieve or cancel that returns one of them finished (completed, failed, cancelled or
incomplete) records ONE generation, ``openai.responses.background``, with its output, usage, cost
and status, and forgets the id (``fetched``); a raw fetch (``with_raw_response``,
``with_streaming_response``) does when the caller parses it. Polls that find it queued or in
progress, ids created elsewhere and raw fetches never parsed record nothing.

A streamed background request (``stream=True``) is a stream like any other; when it stops before
its final event (its reader left, its connection dropped) the response runs on, and its id is
remembered then (``CreatingState``): the stream resumed by ``responses.retrieve(id, stream=True,
starting_after=N)`` (or ``responses.stream(response_id=...)``), or a poll, records that generation
when it finds the reply finished (``_Resumed``), as a streamed retrieval of any remembered id does.

That generation is a child of the generation that created the response, in its trace: the usage
and cost count where the request was made (Langfuse sums them per trace and shows no OpenTelemetry
links). It is started in a copy of the creating call's context, so it has that call's tenant
(a trace never changes tenant), trace attributes and content capture, wherever the poll runs.
It spans from the creating call's return (or its stream's stop) to the poll that found the reply
finished."""

from __future__ import annotations

import contextvars
import re
import threading
import time
from typing import Any

from opentelemetry import trace

from ... import recorder
from ..._internal import count, guarded_failure
from ...observation import Observation, ObservationType
from . import _extract
from ._stream import StreamTracking, track
from ._stream_state import StreamState

__all__ = ["MAX_PENDING", "CreatingState", "asked", "created", "fetched", "forget_all", "watched"]

#: Background responses remembered at once (a process has a few in flight; each holds a context copy).
MAX_PENDING = 1024
#: The statuses of a response still running, and of one that has finished.
_WAITING = frozenset({"queued", "in_progress"})
_FINISHED = frozenset({"completed", "failed", "cancelled", "incomplete"})
#: ``GET .../responses/{id}`` (retrieve) and ``POST .../responses/{id}/cancel``, with the query
#: ``client.beta.responses`` puts in the path (``?beta=true``).
_FETCH = re.compile(r"/responses/([^/?]+)(/cancel)?(?:\?[^/]*)?$")


class _Pending:
    """What the generation of a finished background response needs from the call that created it."""

    __slots__ = ("base_url", "context", "parent", "provider", "started_ns")

    def __init__(self, obs: Observation) -> None:
        self.context = contextvars.copy_context()
        self.parent = obs.span.get_span_context()
        self.started_ns = time.time_ns()
        fields = obs.fields
        self.provider = fields.get("provider")
        self.base_url = (fields.get("metadata") or {}).get("base_url")


_PENDING: dict[str, _Pending] = {}  # insertion order: the oldest first
_LOCK = threading.RLock()  # reentrant: a stream freed by the collector while it is held remembers its response


def created(obs: Observation, response: Any) -> None:
    """Remember ``response`` if it is a background response still running; never raises."""
    try:
        if getattr(response, "status", None) not in _WAITING:
            return
        response_id = getattr(response, "id", None)
        if isinstance(response_id, str) and response_id:
            _remember(response_id, _Pending(obs))
    except Exception as exc:
        guarded_failure("openai.background", exc)


def _remember(response_id: str, pending: _Pending) -> None:
    with _LOCK:
        _PENDING[response_id] = pending
        while len(_PENDING) > MAX_PENDING:
            del _PENDING[next(iter(_PENDING))]
            count("openai.background_forgotten")


def asked(options: Any) -> bool:
    """Whether a Responses request (its ``options``) asks to run in the background."""
    body, extra = getattr(options, "json_data", None), getattr(options, "extra_json", None)
    return bool((type(extra) is dict and extra.get("background"))
                or (type(body) is dict and body.get("background")))


class _Creating(StreamTracking):
    """A background stream's tracking: the stream stopped before its final event, its response
    (still running) is remembered, with the creating call's context, taken when the stream began."""

    __slots__ = ("pending",)

    def __init__(self, obs: Observation | None, state: StreamState) -> None:
        super().__init__(obs, state)
        self.pending = _Pending(obs) if obs is not None else None

    def finish(self, error: BaseException | None = None, interrupted: bool = False) -> None:
        if self.done:
            return
        state, pending = self.state, self.pending
        try:
            state.fold()  # here, not on the pipeline thread: the id is needed now
            response_id = getattr(state, "response_id", None)
            if pending is not None and response_id and state.response is None and state.error is None:
                pending.started_ns = time.time_ns()
                _remember(response_id, pending)
        except Exception as exc:
            guarded_failure("openai.background", exc)
        super().finish(error, interrupted)


class _Resumed(StreamTracking):
    """A streamed retrieval of a remembered response: records no observation of its own; its final
    event's response, if finished, is the response fetched (``_fetched``)."""

    __slots__ = ()

    def finish(self, error: BaseException | None = None, interrupted: bool = False) -> None:
        if self.done:
            return
        self.done = True
        state = self.state
        state.fold()
        response_id = getattr(state, "response_id", None)
        if state.response is not None and response_id:
            _fetched(response_id, state.response)


class CreatingState(StreamState):
    """The state of a background Responses stream, or of a streamed retrieval of one: the
    response's id too (its ``response.created`` event gives it to a stream that creates it)."""

    __slots__ = ("response_id",)
    tracking = _Creating

    def __init__(self, options: Any, response_id: str | None = None) -> None:
        super().__init__("responses", False, 1, options)
        self.response_id = response_id

    def _record_event(self, event: Any) -> None:
        super()._record_event(event)
        if self.response_id is None and getattr(event, "type", None) == "response.created":
            response_id = getattr(getattr(event, "response", None), "id", None)
            self.response_id = response_id if isinstance(response_id, str) and response_id else None


def watched(options: Any) -> str | None:
    """The id of a remembered background response that this request retrieves (streamed or not)
    or cancels, else None (at once when none is remembered); never raises."""
    if not _PENDING:
        return None
    try:
        found = _FETCH.search(options.url)
        if found is None:
            return None
        method = str(options.method).lower()
        if method != ("get" if found.group(2) is None else "post"):
            return None
        response_id = found.group(1)
        return response_id if response_id in _PENDING else None
    except Exception as exc:
        guarded_failure("openai.background", exc)
        return None


def fetched(response_id: str, result: Any) -> None:
    """Record the generation of ``response_id`` if ``result`` (what the SDK returned for the
    request) is that response finished, or once the caller parses it if it is a raw response
    (``with_raw_response``, ``with_streaming_response``); never raises."""
    try:
        if hasattr(result, "http_response"):
            from . import _raw  # here: ``_raw`` imports this module

            _raw.on_parse(result, lambda parsed: _fetched(response_id, parsed), _ignored)
            return
    except Exception as exc:
        guarded_failure("openai.background", exc)
    _fetched(response_id, result)


def _ignored(error: BaseException) -> None:
    """A raw fetch whose parse failed: its response stays remembered for the next fetch."""


def _fetched(response_id: str, result: Any) -> Any:
    """``fetched`` for a parsed ``result`` (a stream: when its final event arrives), handed back."""
    try:
        status = getattr(result, "status", None)
        if status is None and not hasattr(result, "id"):  # a stream (``retrieve(id, stream=True)``)
            track(result, None, CreatingState(None, response_id), _Resumed)
            return result
        if status not in _FINISHED or getattr(result, "id", None) != response_id:
            return result
        with _LOCK:
            pending = _PENDING.pop(response_id, None)
        if pending is not None:
            pending.context.run(_record, pending, result)
    except Exception as exc:
        guarded_failure("openai.background", exc)
    return result


def forget_all() -> None:
    """Forget every remembered response (the integration is uninstalled)."""
    with _LOCK:
        _PENDING.clear()


def _record(pending: _Pending, response: Any) -> None:
    parent = trace.set_span_in_context(trace.NonRecordingSpan(pending.parent))
    obs = recorder.start(ObservationType.GENERATION, "openai.responses.background", parent=parent,
                         start_time=pending.started_ns)
    metadata = {"response_id": getattr(response, "id", None)}
    if pending.base_url is not None:
        metadata["base_url"] = pending.base_url
    obs.update(provider=pending.provider, operation="responses", model=getattr(response, "model", None),
               metadata=metadata)
    obs.defer(_extract.response_fields, "responses", response)
    obs.end()
