"""A gRPC server handler's response serializer, watched for the failures grpc meets after the
handler has returned (``_server`` ends the call's span with the status the client gets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from ..._internal import guarded_failure

if TYPE_CHECKING:
    from ._server import _ServerCall

_NOTHING: Any = object()
_UNSERIALISABLE = "Failed to serialize response!"  # grpc's (sync server) details


def as_is(response: Any) -> Any:
    """What grpc sends for a handler with no ``response_serializer``: the response itself."""
    return response


class Serializer:
    """A handler's ``response_serializer`` (``as_is`` for none), watched for the failures grpc
    meets after the handler has returned: a response that cannot be serialised, or is not bytes
    once serialised. The client then gets INTERNAL (sync server; also when the serializer returns
    None) or UNKNOWN (grpc.aio, which sends an empty message for None); a sync server raises
    TypeError for a value that is not exactly bytes, sending no status at all (the client waits
    for its deadline).

    A single response is serialised by ``prepare``, before the span ends, and handed to grpc
    when it calls the serializer, so it is serialised once; a stream's responses are serialised
    as grpc sends them, a failure ending the span (``watch``). grpc.aio encodes a str response
    (UTF-8) before serialising it."""

    __slots__ = ("aio", "call", "context", "encoded", "error", "raw", "response", "serialize")

    def __init__(self, serialize: Callable[[Any], Any], aio: bool) -> None:
        self.serialize = serialize
        self.aio = aio
        self.call: _ServerCall | None = None
        self.context: Any = None
        self.response: Any = _NOTHING
        self.encoded = False  # the prepared response is a str grpc.aio encodes
        self.raw: Any = None
        self.error: BaseException | None = None

    def watch(self, call: _ServerCall, servicer_context: Any) -> None:
        self.call, self.context = call, servicer_context

    def prepare(self, call: _ServerCall, response: Any) -> None:
        try:
            if self.aio and isinstance(response, str):  # grpc.aio's own encoding fails as this does
                response, self.encoded = response.encode("utf8"), True
            self.raw = self.serialize(response)
        except BaseException as error:  # raised to grpc when it serialises, as untraced
            self.error = error
        self.response = response
        call.unsent = self._failure(self.raw, self.error)

    def __call__(self, response: Any) -> Any:
        if response is self.response or (self.encoded and response == self.response):  # prepared
            raw, error = self.raw, self.error
            self.response, self.raw, self.error, self.encoded = _NOTHING, None, None, False  # once: free them
            if error is not None:
                raise error
            return raw
        try:
            raw = self.serialize(response)
        except BaseException as error:
            self._fail(error)
            raise
        if type(raw) is not bytes and (raw is not None or not self.aio):
            self._fail(None, raw)
        return raw

    def _fail(self, error: BaseException | None, raw: Any = None) -> None:
        """End a stream's span with the status grpc sends for an item it could not serialise."""
        try:
            if self.call is not None:
                self.call.unsent = self._failure(raw, error)
                self.call.close(self.context)
        except Exception as exc:  # the application's error, not ours, must reach grpc
            guarded_failure("grpc.serializer", exc)

    def _failure(self, raw: Any, error: BaseException | None) -> tuple[Any, str | None, BaseException | None] | None:
        """The status grpc sends (the span's message is the error's, when there is one); a status
        of None: grpc sends none."""
        if error is not None:
            return (grpc.StatusCode.UNKNOWN if self.aio else grpc.StatusCode.INTERNAL), None, error
        if raw is None:
            return None if self.aio else (grpc.StatusCode.INTERNAL, _UNSERIALISABLE, None)
        if type(raw) is bytes:  # exactly: grpc takes no subclass
            return None
        kind = type(raw).__name__
        if self.aio:  # grpc's errors, word for word
            return grpc.StatusCode.UNKNOWN, None, TypeError(f"Expected bytes, got {kind}")
        return None, None, TypeError(f"Argument 'message' has incorrect type (expected bytes, got {kind})")


