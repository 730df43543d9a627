"""How the Responses WebSocket mode's events find their requests (``_websocket``): per connection,
per lane (``stream_id``), the requests waiting for their ``response.created``, the one running, and
the last one finished (what an automatic successor continues); each request's generation, started
in its sender's context and finished in a copy of it."""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from typing import Any

from ... import recorder
from ..._internal import count, guarded_failure
from ...observation import Observation, ObservationType
from .. import ownership
from . import _extract
from ._endpoints import provider as _provider
from ._stream_state import StreamState

__all__ = ["CLOSED", "LOST", "MAX_IN_FLIGHT", "NEVER_SENT", "Connection", "Flight", "Queued"]

#: Generations in flight per connection (sent, not yet finished); later requests go unrecorded.
MAX_IN_FLIGHT = 64
#: Requests waiting per connection, recorded or not; beyond, the connection is traced no more.
_MAX_WAITING = 4096
#: Lanes remembered per connection (idle ones forgotten first).
_MAX_LANES = 256
_FINAL = frozenset({"response.completed", "response.failed", "response.incomplete"})
_STARTED = frozenset({"response.created", "response.queued"})
#: Steering inputs remembered per connection until a successor answers them (the newest kept).
_MAX_STEERS = 16
CLOSED = "interrupted: the WebSocket closed before the response finished"
LOST = "interrupted: the WebSocket connection was lost before the response finished"
_UNFINISHED = "interrupted: the server started another response on its lane before this one finished"
NEVER_SENT = "not sent: the WebSocket connection it was queued for never opened"
_GIVEN_UP = "interrupted: too many requests waiting on the WebSocket connection to trace it further"


class Flight:
    """One request: its generation (None when not recorded), the sender's context, what came back."""

    __slots__ = ("context", "obs", "response_id", "state")

    def __init__(self, obs: Observation | None, state: StreamState | None,
                 context: contextvars.Context | None = None) -> None:
        self.obs = obs
        self.state = state
        self.context = context or (contextvars.copy_context() if obs is not None else None)
        self.response_id: str | None = None

    def finish(self, level: str | None = None, message: str | None = None) -> None:
        """End the generation (once) with what the events gave, and ``level``/``message`` if given."""
        obs, self.obs = self.obs, None
        state, self.state = self.state, None  # read as the generation ends: a lane's last keeps none
        if obs is None:
            return
        try:
            self.context.run(_finish, obs, state, level, message)  # type: ignore[union-attr]
        except RuntimeError:  # the context is entered elsewhere (a reader on another thread)
            _finish(obs, state, level, message)
        except Exception as exc:
            guarded_failure("openai.websocket", exc)
            obs.end()


def _finish(obs: Observation, state: StreamState | None, level: str | None, message: str | None) -> None:
    try:
        if state is not None:
            obs.defer(state.fields)
        if level == "ERROR":
            obs.record_error(message or "error event")
        elif level is not None:
            obs.set_level(level, message)
    except Exception as exc:
        guarded_failure("openai.websocket", exc)
    obs.end()


class _Lane:
    """One ``stream_id``'s requests: those waiting for their ``response.created``, the one running,
    and the last one finished (what an automatic successor continues)."""

    __slots__ = ("active", "last", "steered", "waiting")

    def __init__(self) -> None:
        self.waiting: deque[Flight] = deque()
        self.active: Flight | None = None
        self.last: Flight | None = None
        self.steered = False


class Connection:
    """One traced connection's lanes; ends what is in flight when the SDK connection is freed."""

    __slots__ = ("base_url", "given_up", "lanes", "lock", "provider", "recorded", "sending", "steers", "waiting")

    def __init__(self, connection: Any) -> None:
        self.lock = threading.Lock()
        #: Held by a sync thread from its request's matching to its send (``_websocket``): a
        #: thread that sends later on the wire is matched later (the reader never takes it).
        self.sending = threading.RLock()
        self.lanes: dict[Any, _Lane] = {}
        self.recorded = 0  # generations in flight
        self.waiting = 0  # requests waiting, recorded or not
        self.given_up = False
        #: (response steered, input) of each ``response.steer`` no successor has answered yet.
        self.steers: deque[tuple[Any, Any]] = deque(maxlen=_MAX_STEERS)
        self.provider, self.base_url = _where(connection)

    def lane(self, key: Any) -> _Lane:
        lane = self.lanes.get(key)
        if lane is None:
            if len(self.lanes) >= _MAX_LANES:
                for old, idle in list(self.lanes.items()):
                    if not idle.waiting and idle.active is None:
                        del self.lanes[old]
                        break
            lane = self.lanes[key] = _Lane()
        return lane

    def sent(self, body: dict[str, Any]) -> Flight:
        """A ``response.create`` about to be sent: its flight, waiting on its lane."""
        flight = _flight(body, self.recorded, self.provider, self.base_url)
        with self.lock:
            if self.waiting < _MAX_WAITING:
                self.lane(body.get("stream_id")).waiting.append(flight)
                self.waiting += 1
                self.recorded += flight.obs is not None
                return flight
            self.given_up = True  # a reader that never reads: matching replies would hold ever more
            ended = [*self.clear(), flight]
        count("openai.websocket_given_up")
        for done in ended:
            done.finish("WARNING", _GIVEN_UP)
        return flight

    def adopt(self, queued: Queued) -> None:
        """Take the requests queued on the connection manager before this connection opened (it
        sends them first): they wait on their lanes as if sent here."""
        with self.lock:
            flights, queued.flights = queued.flights, []
            for lane, flight in flights:
                self.lane(lane).waiting.append(flight)
                self.waiting += 1
                self.recorded += flight.obs is not None
        for _, flight in flights:
            if flight.obs is not None:
                flight.obs.update(provider=self.provider, metadata={"base_url": self.base_url})

    def unsent(self, flight: Flight, error: BaseException) -> None:
        """The send of ``flight`` raised: it waits no more, its generation ends with the error."""
        with self.lock:
            for lane in self.lanes.values():
                if flight in lane.waiting:
                    lane.waiting.remove(flight)
                    self._done(flight, waited=True)
                    break
        if flight.obs is not None:
            flight.obs.record_error(error)
        flight.finish()

    def steer(self, target: Any, steering: Any) -> None:
        """A ``response.steer`` of the response ``target`` is sent: its input, for the successor."""
        with self.lock:
            self.steers.append((target, steering))

    def _steer_failed(self, event: Any) -> None:
        """``response.steer.failed``: no successor answers that input; if it steered its lane's last
        response, no successor follows it (called with the lock held)."""
        target = getattr(getattr(event, "steer", None), "previous_response_id", None)
        for entry in self.steers:
            if entry[0] == target:
                self.steers.remove(entry)
                break
        lane = self.lanes.get(getattr(event, "stream_id", None))
        if (lane is not None and lane.steered and lane.last is not None and lane.last.response_id == target
                and all(aim != target for aim, _ in self.steers)):
            lane.steered = False

    def _done(self, flight: Flight, waited: bool) -> None:
        self.waiting -= waited
        self.recorded -= flight.obs is not None

    def received(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        ended: list[tuple[Flight, str | None, str | None]] = []
        with self.lock:
            if kind == "response.steer.failed":
                self._steer_failed(event)
                return
            lane = self.lanes.get(getattr(event, "stream_id", None))
            if lane is None:
                return
            flight = lane.active
            if kind in _STARTED:
                response_id = getattr(getattr(event, "response", None), "id", None)
                if flight is None or flight.response_id != response_id:
                    if flight is not None:
                        ended.append((flight, "WARNING", _UNFINISHED))
                        self._done(flight, waited=False)
                    flight = lane.active = self._next(lane)
                    if flight is not None:
                        flight.response_id = response_id
            elif kind == "error" and flight is None and lane.waiting:  # a request refused before it started
                flight = lane.active = lane.waiting.popleft()
                self.waiting -= 1
            if flight is None:
                return
            if flight.state is not None:
                flight.state.take(event)
            if kind in _FINAL or kind == "error":
                lane.active, lane.last = None, flight
                response = getattr(event, "response", None)
                lane.steered = kind == "response.incomplete" and getattr(
                    getattr(response, "incomplete_details", None), "reason", None) == "steered"
                self._done(flight, waited=False)
                ended.append((flight, "ERROR", _error_message(event)) if kind == "error" else (flight, None, None))
        for done, level, message in ended:
            done.finish(level, message)

    def _next(self, lane: _Lane) -> Flight | None:
        """The request a ``response.created`` on ``lane`` answers: the next one waiting, or a new
        generation for the automatic successor of the last response (called with the lock held)."""
        if lane.waiting and not lane.steered:
            self.waiting -= 1
            return lane.waiting.popleft()
        lane.steered = False
        last = lane.last
        if last is None or last.context is None or self.recorded >= MAX_IN_FLIGHT:
            count("openai.websocket_unmatched")
            return Flight(None, None)
        steered = [steering for aim, steering in self.steers if aim == last.response_id]
        if steered:
            self.steers = deque(((aim, steering) for aim, steering in self.steers if aim != last.response_id),
                                maxlen=_MAX_STEERS)
        body = {"input": steered[0] if len(steered) == 1 else steered} if steered else {}
        try:
            obs = last.context.run(_started, body, self.provider, self.base_url, last.response_id)
        except Exception as exc:
            guarded_failure("openai.websocket", exc)
            return Flight(None, None)
        self.recorded += 1
        return Flight(obs, StreamState("responses", False, 1, None), last.context)

    def clear(self) -> list[Flight]:
        """Forget every request in flight (called with the lock held): those to end."""
        flights = [f for lane in self.lanes.values() for f in (lane.active, *lane.waiting) if f is not None]
        self.lanes.clear()
        self.recorded = self.waiting = 0
        return flights

    def interrupted(self, message: str) -> None:
        with self.lock:
            flights = self.clear()
        for flight in flights:
            flight.finish("WARNING", message)

    def __del__(self) -> None:  # the SDK connection was freed unclosed
        try:
            self.interrupted(CLOSED)
        except Exception as exc:
            guarded_failure("openai.websocket", exc)


class Queued:
    """The ``response.create`` events queued on a connection manager before its connection opens
    (``ConnectionManager.send``), their generations started in their senders' contexts; adopted by
    the connection (``Connection.adopt``), else ended WARNING when the manager is freed."""

    __slots__ = ("flights",)

    def __init__(self) -> None:
        self.flights: list[tuple[Any, Flight]] = []  # (lane, flight)

    def add(self, body: dict[str, Any]) -> None:
        flight = _flight(body, sum(f.obs is not None for _, f in self.flights), None, "")
        self.flights.append((body.get("stream_id"), flight))

    def __del__(self) -> None:
        for _, flight in self.flights:
            flight.finish("WARNING", NEVER_SENT)


def _flight(body: dict[str, Any], in_flight: int, provider: str | None, base_url: str) -> Flight:
    """The flight of a ``response.create``: recorded unless ``MAX_IN_FLIGHT`` are (counted), or
    another instrumentation's generation is current (it records the call)."""
    obs = None
    if in_flight >= MAX_IN_FLIGHT:
        count("openai.websocket_untraced")
    elif ownership.owner(ObservationType.GENERATION) is None:
        obs = _started(body, provider, base_url)
    return Flight(obs, StreamState("responses", False, 1, _Asked(body.get("model"))) if obs else None)


class _Asked:
    """What prices a reply that names no model: the model the request asked for."""

    __slots__ = ("json_data",)

    def __init__(self, model: Any) -> None:
        self.json_data = {"model": model}


def _started(body: dict[str, Any], provider: str | None, base_url: str, successor_of: str | None = None) -> Observation:
    obs = recorder.start(ObservationType.GENERATION, "openai.responses")
    try:
        metadata: dict[str, Any] = {"base_url": base_url, "transport": "websocket"}
        if body.get("stream_id") is not None:
            metadata["stream_id"] = body["stream_id"]
        if successor_of is not None:  # it continues ``successor_of`` with the steering input
            metadata["successor_of"] = successor_of
        fields = _extract.request_fields("responses", body)
        obs.update(provider=provider, **fields, metadata=metadata)
    except Exception as exc:
        guarded_failure("openai.websocket", exc)
    return obs


def _where(connection: Any) -> tuple[str, str]:
    """(provider, base URL) of a connection, from the URL its socket was opened to."""
    try:
        uri = connection._connection.protocol.uri
        path = uri.path[: -len("/responses")] if uri.path.endswith("/responses") else uri.path
        scheme = "https" if uri.secure else "http"
        holder = _UrlHolder(f"{scheme}://{uri.host}:{uri.port}{path}")
        return _provider(holder)
    except Exception as exc:
        guarded_failure("openai.websocket", exc)
        return "openai", ""


class _UrlHolder:
    """Just a base URL, as ``_endpoints.provider`` reads it from a client."""

    def __init__(self, base_url: str) -> None:
        self._base_url = base_url


def _error_message(event: Any) -> str:
    error = getattr(event, "error", None)
    message = getattr(error, "message", None)
    code = getattr(error, "code", None) or getattr(error, "type", None)
    return f"{code}: {message}" if code and message else str(message or code or "error event")
