"""The Responses API's WebSocket mode (``client.responses.connect()``, ``client.beta.responses``'
too): every ``response.create``
sent on a connection is one ``openai.responses`` generation, from the send to that response's
final event (``response.completed``, ``failed``, ``incomplete``) or ``error`` event, with the
request's input, model and parameters, and the reply's output, usage, cost and finish reason,
folded from the events as a streamed Responses call's are (``StreamState``).

The generation starts in the sender's context: under the span current at the send, with the
sender's tenant; it is finished in a copy of that context, wherever the events are read.
Server events are matched to requests by lane (``stream_id``; none is the default lane): a lane
runs its requests in order, so each ``response.created`` is the next request sent on its lane,
unless it is the automatic successor of a steered response (``response.incomplete`` with reason
``steered``, or a ``response.created`` with no request waiting), recorded as one more generation
beside the one it continues (metadata ``successor_of``), its input the ``response.steer`` input sent
for that response (none follows an input the server could not commit: ``response.steer.failed``).

What is patched (the SDK's own objects reach the caller unchanged): ``send_raw`` (the JSON that
``send`` and the caller's raw sends put on the socket: what was sent, read back), the connection
manager's ``send`` (a request queued before the connection opens: sent first when it does; once it is open,
before the connection's next send),
``parse_event`` (every event ``recv``, iteration and ``dispatch_events`` hand out),
``recv_bytes`` (a dropped socket: ``ConnectionClosed``) and ``close``. A socket that closes, drops
or reconnects with responses in flight ends them WARNING. At most ``MAX_IN_FLIGHT`` generations
are in flight per connection: later requests are matched but not recorded
(``openai.websocket_untraced``). Not traced: events read only as bytes (``recv_bytes`` without
``parse_event``)."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import wrapt

from ..._internal import guarded_failure
from ._websocket_lanes import CLOSED, LOST, MAX_IN_FLIGHT, Connection, Flight, Queued

__all__ = ["CLOSED", "LOST", "MAX_IN_FLIGHT", "patch", "unpatch"]

#: Where a traced connection keeps its ``Connection`` (in the SDK connection's ``__dict__``).
_KEY = "_autotrace_ws"
_SENT = frozenset({"response.create", "response.steer"})
#: Where a connection manager's send queue keeps the ``Queued`` requests (in its ``__dict__``): the
#: connection the manager opens is given the same queue.
_QUEUED = "_autotrace_ws_queued"


def _body(data: Any) -> dict[str, Any] | None:
    """The ``response.create`` or ``response.steer`` event ``data`` (sent text or bytes) holds,
    else None (cheap for other events: they are not parsed)."""
    if isinstance(data, bytes):
        if b'"response.' not in data:
            return None
    elif not isinstance(data, str) or '"response.' not in data:
        return None
    body = json.loads(data)
    return body if type(body) is dict and body.get("type") in _SENT else None


def _traced(instance: Any, data: Any, hold: bool = False) -> tuple[Connection, Flight] | None:
    """Before a send on a Responses connection: the flight of the ``response.create`` it sends;
    with ``hold``, the connection's ``sending`` lock is held (the caller releases it after the
    send), so that threads' requests wait on their lanes in the order they reach the socket."""
    try:
        if type(instance) not in _CLASSES:
            return None
        body = _body(data)
        return None if body is None else _sent(instance, body, hold)
    except Exception as exc:
        guarded_failure("openai.websocket", exc)
        return None


def _sent(instance: Any, body: dict[str, Any], hold: bool) -> tuple[Connection, Flight] | None:
    """``_traced`` for the ``body`` of a ``response.create`` or ``response.steer``."""
    fields = instance.__dict__
    traced = fields.get(_KEY)
    if body.pop("type") == "response.steer":
        if traced is not None:
            traced.steer(body.get("previous_response_id"), body.get("input"))
        return None
    if traced is None:  # two threads' first sends: one Connection kept
        traced = fields.setdefault(_KEY, Connection(instance))
    if traced.given_up:
        return None
    if not hold:
        return traced, traced.sent(body)
    traced.sending.acquire()
    try:
        return traced, traced.sent(body)
    except BaseException:
        traced.sending.release()
        raise


def _manager_send(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``ConnectionManager.send``: the event is queued, to be sent first when the connection opens;
    once it is open, before the connection's next send (as if sent on it now, ``_queued_on``)."""
    queue, connection = _parts_of(instance)
    if queue is not None and connection is not None and not getattr(connection, "_intentionally_closed", True):
        return _queued_on(wrapped, queue, connection, args, kwargs)
    before = len(getattr(queue, "_queue", ()))
    result = wrapped(*args, **kwargs)
    if queue is not None:
        try:
            body = _read_back(queue, before)
            if body is not None and body.pop("type") == "response.create":
                fields = queue.__dict__
                queued = fields.get(_QUEUED)
                if queued is None:
                    queued = fields[_QUEUED] = Queued()
                queued.add(body)
        except Exception as exc:
            guarded_failure("openai.websocket", exc)
    return result


def _queued_on(wrapped: Any, queue: Any, connection: Any, args: Any, kwargs: Any) -> Any:
    """``ConnectionManager.send`` with its connection open: the event joins the connection's send
    queue, which the SDK flushes before that connection's next send (or on reconnecting), so its
    request waits on its lane ahead of any sent after, as a send on the connection would."""
    fields = connection.__dict__
    traced = fields.get(_KEY) or fields.setdefault(_KEY, Connection(connection))
    with traced.sending:  # no thread sends on the connection between the queueing and its record
        before = len(getattr(queue, "_queue", ()))
        result = wrapped(*args, **kwargs)
        try:
            body = _read_back(queue, before)
            if body is not None:
                _sent(connection, body, hold=False)
        except Exception as exc:
            guarded_failure("openai.websocket", exc)
    return result


def _read_back(queue: Any, before: int) -> dict[str, Any] | None:
    """The ``response.create`` or ``response.steer`` just queued (after ``before`` items), if any."""
    items = queue._queue
    return _body(items[before][0]) if len(items) > before else None


def _parts_of(manager: Any) -> tuple[Any, Any]:
    """A connection manager's send queue (its private ``__send_queue``) and the connection it
    opened (``__connection``), each None if not found."""
    queue = connection = None
    for value in getattr(manager, "__dict__", {}).values():
        if type(value).__name__ == "SendQueue":
            queue = value
        elif type(value) in _CLASSES:
            connection = value
    return queue, connection


def _connection_init(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> None:
    wrapped(*args, **kwargs)
    queued = getattr(kwargs.get("send_queue"), "__dict__", {}).pop(_QUEUED, None)
    if queued is not None and queued.flights:
        try:
            traced = instance.__dict__[_KEY] = Connection(instance)
            traced.adopt(queued)
        except Exception as exc:
            guarded_failure("openai.websocket", exc)


def _failed(sending: tuple[Connection, Flight] | None, error: BaseException) -> None:
    if sending is not None:
        try:
            sending[0].unsent(sending[1], error)
        except Exception as exc:
            guarded_failure("openai.websocket", exc)


def _sync_send_raw(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    sending = _traced(instance, args[0] if args else kwargs.get("data"), hold=True)
    if sending is None:
        return wrapped(*args, **kwargs)
    try:
        return wrapped(*args, **kwargs)
    except BaseException as error:
        _failed(sending, error)
        raise
    finally:
        sending[0].sending.release()


async def _async_send_raw(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    sending = _traced(instance, args[0] if args else kwargs.get("data"))
    try:
        return await wrapped(*args, **kwargs)
    except BaseException as error:
        _failed(sending, error)
        raise


def _parse_event(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    event = wrapped(*args, **kwargs)
    traced = getattr(instance, "__dict__", {}).get(_KEY)
    if traced is not None:
        try:
            traced.received(event)
        except Exception as exc:
            guarded_failure("openai.websocket", exc)
    return event


def _interrupted(instance: Any, message: str) -> None:
    traced = getattr(instance, "__dict__", {}).get(_KEY)
    if traced is not None:
        try:
            traced.interrupted(message)
        except Exception as exc:
            guarded_failure("openai.websocket", exc)


def _lost(instance: Any, error: BaseException) -> None:
    if _CLOSED_ERRORS and isinstance(error, _CLOSED_ERRORS):
        _interrupted(instance, LOST)


def _sync_recv_bytes(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    try:
        return wrapped(*args, **kwargs)
    except BaseException as error:
        _lost(instance, error)
        raise


async def _async_recv_bytes(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    except BaseException as error:
        _lost(instance, error)
        raise


def _sync_close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if type(instance) in _CLASSES:
        _interrupted(instance, CLOSED)
    return wrapped(*args, **kwargs)


async def _async_close(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    if type(instance) in _CLASSES:
        _interrupted(instance, CLOSED)
    return await wrapped(*args, **kwargs)


#: The SDK's Responses connection classes (``_apply`` finds them), and websockets' closed-socket error.
_CLASSES: tuple[type, ...] = ()
_CLOSED_ERRORS: tuple[type, ...] = ()
#: The modules of the connection classes (``client.responses``' and ``client.beta.responses``'): the
#: SDK imports one at a client's first ``.responses`` (about 120 ms), so each is patched when it is
#: imported, not imported here.
_MODULES = ("openai.resources.responses.responses", "openai.resources.beta.responses.responses")
_BASE = "openai._websocket_connection"
_LOCK = threading.Lock()
#: The integration's patcher while it is instrumented (``patch`` to ``unpatch``), the modules
#: patched (``_apply``; ``_BASE`` for the classes they share), and whether the import hooks are
#: registered (once per process).
_patching: dict[str, Any] = {"patcher": None, "applied": set(), "hooked": False}


def patch(patcher: Any) -> None:
    """Wrap the Responses WebSocket connections (openai 3.x) now if their modules are imported,
    else when they are."""
    with _LOCK:
        _patching["patcher"] = patcher
        hook, _patching["hooked"] = not _patching["hooked"], True
    for name in _MODULES:
        if hook:
            wrapt.register_post_import_hook(_apply, name)  # at once if imported already
        elif name in sys.modules:
            _apply(sys.modules[name])


def unpatch() -> None:
    """The integration is uninstrumented (its patcher undoes the wrappers): patch no more."""
    with _LOCK:
        _patching["patcher"], _patching["applied"] = None, set()


def _apply(module: Any) -> None:
    """Run in the application's import of one of the SDK's responses modules: never raises into it."""
    global _CLASSES, _CLOSED_ERRORS
    with _LOCK:
        patcher, applied, name = _patching["patcher"], _patching["applied"], module.__name__
        if patcher is None or name in applied:
            return
        applied.add(name)
        try:
            from websockets.exceptions import ConnectionClosed
        except ImportError:  # no WebSocket mode without it
            return
        try:
            sync, asynchronous = module.ResponsesConnection, module.AsyncResponsesConnection
        except AttributeError:  # an SDK without the WebSocket mode
            return
        _CLASSES, _CLOSED_ERRORS = (*{*_CLASSES, sync, asynchronous},), (ConnectionClosed,)
        try:
            for target, wrapper in (("ResponsesConnection.parse_event", _parse_event),
                                    ("AsyncResponsesConnection.parse_event", _parse_event),
                                    ("ResponsesConnection.recv_bytes", _sync_recv_bytes),
                                    ("AsyncResponsesConnection.recv_bytes", _async_recv_bytes),
                                    ("ResponsesConnection.__init__", _connection_init),
                                    ("AsyncResponsesConnection.__init__", _connection_init),
                                    ("ResponsesConnectionManager.send", _manager_send),
                                    ("AsyncResponsesConnectionManager.send", _manager_send)):
                patcher.wrap(name, target, wrapper, optional=True)
            if _BASE in applied:
                return
            applied.add(_BASE)
            for target, wrapper in (("WebSocketConnectionBase.send_raw", _sync_send_raw),
                                    ("AsyncWebSocketConnectionBase.send_raw", _async_send_raw),
                                    ("WebSocketConnectionBase.close", _sync_close),
                                    ("AsyncWebSocketConnectionBase.close", _async_close)):
                patcher.wrap(_BASE, target, wrapper, optional=True)
        except Exception as exc:
            guarded_failure("openai.websocket", exc)
