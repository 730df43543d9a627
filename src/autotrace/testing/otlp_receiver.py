"""A loopback OTLP/HTTP receiver that decodes what exporters send (Langfuse paths included).

Used by the test suite and the benchmarks; it can also fail, slow down or drop connections on
demand, to show how the exporter behaves under faults. Needs ``autotrace[testing]`` (the
protobuf classes it decodes with).
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from ._loopback import LoopbackServer

TRACE_PATHS = ("/api/public/otel/v1/traces", "/v1/traces")
SCORES_PATH = "/api/public/scores"
PROJECTS_PATH = "/api/public/projects"


def decode_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as a plain Python value."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [decode_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return decode_attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def decode_attributes(items: Any) -> dict[str, Any]:
    return {item.key: decode_value(item.value) for item in items if isinstance(item, KeyValue)}


@dataclasses.dataclass
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    events: list[dict[str, Any]]
    resource: dict[str, Any]
    scope_name: str
    headers: dict[str, str]
    #: Each link's trace id, span id and attributes.
    links: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    raw_body_len: int
    span_count: int
    body: bytes = b""  # decompressed
    #: The client's address and port: one per connection.
    peer: tuple[str, int] = ("", 0)


class OtlpReceiver(LoopbackServer):
    """``with OtlpReceiver() as rx: ... rx.wait_for_spans(3)``; ``rx.endpoint`` is the base URL
    (``https://`` when given a server-side ``tls`` context)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self._cond = threading.Condition()
        self._spans: list[ReceivedSpan] = []
        self._requests: list[ReceivedRequest] = []
        self._scores: list[tuple[dict[str, str], dict[str, Any]]] = []
        #: The body sizes of the trace requests refused by ``limit_body``.
        self._refused_sizes: list[int] = []
        self._fail_status: int | None = None
        self._fail_times: int | None = None
        #: The status the scores API alone answers (``fail_scores_with``), and for how many requests.
        self._scores_fail: tuple[int, int | None] | None = None
        self._delay = 0.0
        self._drops = 0
        self._auth: str | None = None
        self._max_body: int | None = None
        #: Whether ``limit_body`` refuses at the headers, closing without reading the body.
        self._refuse_at_headers = False
        #: What accepted trace requests are answered with: (rejected spans, message, as JSON), and for how many.
        self._partial: tuple[int, str, bool] | None = None
        self._partial_times: int | None = None
        #: The project each public key belongs to, as ``GET /api/public/projects`` names it.
        self.projects: dict[str, dict[str, Any]] = {}

    @property
    def endpoint(self) -> str:
        return self.url

    # -- fault injection ----------------------------------------------------------------------------
    def fail_with(self, status: int | None, times: int | None = None) -> None:
        """Answer ``status`` to the next ``times`` requests (all, if None); ``None`` recovers."""
        with self._cond:
            self._fail_status, self._fail_times = status, times

    def fail_scores_with(self, status: int | None, times: int | None = None) -> None:
        """Answer ``status`` to the next ``times`` score requests (all, if None) while the OTLP
        endpoint keeps taking spans; ``None`` recovers."""
        with self._cond:
            self._scores_fail = (status, times) if status is not None else None

    def _score_fault(self) -> int | None:
        with self._cond:
            if self._scores_fail is None:
                return None
            status, times = self._scores_fail
            if times is not None:
                self._scores_fail = (status, times - 1) if times > 1 else None
            return status

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def drop_connections(self, times: int) -> None:
        with self._cond:
            self._drops = times

    def require_auth(self, header_value: str | None) -> None:
        self._auth = header_value

    def limit_body(self, max_bytes: int | None, *, at_headers: bool = False) -> None:
        """Refuse trace requests whose body (as sent, compressed) is over ``max_bytes`` with 413, as
        a proxy in front of the endpoint does (nginx's ``client_max_body_size``); None lifts it.
        ``at_headers``: answer as soon as the headers say so and close, the body left unread."""
        self._max_body, self._refuse_at_headers = max_bytes, at_headers

    def answer_partial_success(self, rejected_spans: int, message: str = "", *, as_json: bool = False,
                               times: int | None = None) -> None:
        """Answer the next ``times`` accepted trace requests (all, if None) with OTLP's
        ``partial_success``: ``rejected_spans`` refused, and ``message`` (a warning when none are),
        in protobuf or, ``as_json``, in proto3's JSON mapping (the count as a string). The spans are
        still recorded as received: the exporter cannot tell which were refused."""
        with self._cond:
            self._partial, self._partial_times = (rejected_spans, message, as_json), times

    # -- data ---------------------------------------------------------------------------------------
    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._cond:
            return list(self._spans)

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._cond:
            return list(self._requests)

    @property
    def scores(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        with self._cond:
            return list(self._scores)

    @property
    def refused_sizes(self) -> list[int]:
        """The compressed sizes of the trace requests refused as too large, in order."""
        with self._cond:
            return list(self._refused_sizes)

    def wait_for_spans(self, n: int, timeout: float = 5.0) -> list[ReceivedSpan]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._spans) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return list(self._spans)

    def clear(self) -> None:
        """Forget everything received and every injected fault."""
        self._auth = None
        self._max_body = None
        self._delay = 0.0
        with self._cond:
            self._fail_status = self._fail_times = None
            self._scores_fail = None
            self._drops = 0
            self._partial = self._partial_times = None
            self._spans.clear()
            self._requests.clear()
            self._scores.clear()
            self._refused_sizes.clear()

    # -- request handling ---------------------------------------------------------------------------
    def _injected_fault(self) -> str | int | None:
        with self._cond:
            if self._drops > 0:
                self._drops -= 1
                return "drop"
            if self._fail_status is not None:
                if self._fail_times is not None:
                    if self._fail_times <= 0:
                        self._fail_status = None
                        return None
                    self._fail_times -= 1
                return self._fail_status
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        if (self._refuse_at_headers and self._max_body is not None and length > self._max_body
                and handler.path.split("?", 1)[0] in TRACE_PATHS):
            with self._cond:
                self._refused_sizes.append(length)
            handler.close_connection = True
            self._respond(handler, 413, b"", "text/html", {"Connection": "close"})
            return
        body = handler.rfile.read(length)
        if self._delay:
            time.sleep(self._delay)
        fault = self._injected_fault()
        if fault == "drop":
            handler.close_connection = True
            handler.connection.close()
            return
        if isinstance(fault, int):
            extra = {"Retry-After": "0"} if fault == 429 else {}
            self._respond(handler, fault, b"{}", "application/json", extra)
            return
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if self._auth is not None and headers.get("authorization") != self._auth:
            self._respond(handler, 401, b'{"message":"unauthorized"}', "application/json")
            return
        path = handler.path.split("?", 1)[0]
        if path in TRACE_PATHS and self._max_body is not None and length > self._max_body:
            with self._cond:
                self._refused_sizes.append(length)
            self._respond(handler, 413, b"<html><body>413 Request Entity Too Large</body></html>", "text/html")
            return
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        if path in TRACE_PATHS:
            spans = self._decode(body, headers)
            with self._cond:
                self._spans.extend(spans)
                self._requests.append(ReceivedRequest(path, headers, length, len(spans), body,
                                                      handler.client_address[:2]))
                self._cond.notify_all()
            self._respond(handler, 200, *self._trace_answer())
        elif path == SCORES_PATH:
            if (status := self._score_fault()) is not None:
                self._respond(handler, status, b"{}", "application/json")
                return
            with self._cond:
                self._scores.append((headers, json.loads(body or b"{}")))
                self._requests.append(ReceivedRequest(path, headers, length, 0, body, handler.client_address[:2]))
                self._cond.notify_all()
            self._respond(handler, 200, json.dumps({"id": uuid.uuid4().hex}).encode(), "application/json")
        elif path == PROJECTS_PATH and handler.command == "GET":
            with self._cond:
                self._requests.append(ReceivedRequest(path, headers, length, 0, body, handler.client_address[:2]))
            self._respond(handler, 200, json.dumps({"data": self._projects_of(headers)}).encode(), "application/json")
        else:
            self._respond(handler, 404, b"{}", "application/json")

    def _projects_of(self, headers: dict[str, str]) -> list[dict[str, Any]]:
        """The projects API's ``data`` for the request's keys: the project its public key names in
        ``projects``, else none (as Langfuse answers keys it knows)."""
        auth = headers.get("authorization", "")
        try:
            public_key = base64.b64decode(auth.removeprefix("Basic ")).decode().split(":", 1)[0]
        except ValueError:
            return []
        project = self.projects.get(public_key)
        if project is None:
            return []
        return [{"id": "project-id", "organization": {"id": "org-id", "name": "org"}, "metadata": {}, **project}]

    def _trace_answer(self) -> tuple[bytes, str]:
        """The body and content type of an accepted trace request's answer."""
        with self._cond:
            partial = self._partial
            if partial is not None and self._partial_times is not None:
                self._partial_times -= 1
                if self._partial_times <= 0:
                    self._partial = self._partial_times = None
        if partial is None:
            return ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf"
        rejected, message, as_json = partial
        if as_json:
            answer = {"partialSuccess": {"rejectedSpans": str(rejected), "errorMessage": message}}
            return json.dumps(answer).encode(), "application/json"
        response = ExportTraceServiceResponse()
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
        return response.SerializeToString(), "application/x-protobuf"

    @staticmethod
    def _respond(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str,
                 extra: dict[str, str] | None = None) -> None:
        """Answer in ONE write: headers and body written apart, the body waits (Nagle) for the
        client's delayed ACK of the headers, ~40 ms per answer on Linux loopback."""
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            handler.send_header(key, value)
        handler._headers_buffer.append(b"\r\n" + body)  # type: ignore[attr-defined]  # what end_headers adds, and the body
        handler.flush_headers()

    @staticmethod
    def _decode(body: bytes, headers: dict[str, str]) -> list[ReceivedSpan]:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = decode_attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(ReceivedSpan(
                        trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None, name=span.name, kind=span.kind,
                        start_time_unix_nano=span.start_time_unix_nano, end_time_unix_nano=span.end_time_unix_nano,
                        attributes=decode_attributes(span.attributes), status_code=span.status.code,
                        status_message=span.status.message,
                        events=[{"name": e.name, "attributes": decode_attributes(e.attributes)} for e in span.events],
                        resource=resource, scope_name=scope_spans.scope.name, headers=headers,
                        links=[{"trace_id": link.trace_id.hex(), "span_id": link.span_id.hex(),
                                "attributes": decode_attributes(link.attributes)} for link in span.links],
                    ))
        return spans
