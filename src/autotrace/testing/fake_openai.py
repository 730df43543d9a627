"""A loopback server speaking enough of the OpenAI REST API for the real ``openai`` SDK.

Chat completions (streamed or not, with tool calls and ``stream_options.include_usage``), the
Responses API (a ``background`` request is answered ``queued``, or streamed, under an id of its
own, then fetched, cancelled or streamed again by that id: ``_fake_openai_background``), legacy
completions, embeddings, moderations, vector store searches and decisions (``_fake_openai_tasks``),
plus the Azure path shape. Replies are deterministic and
can be scripted per request: reply text, a refusal, tool calls, chunk count, usage, model, the
categories a moderation flags, or an OpenAI-style error.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

from ._fake_openai_background import BackgroundResponses
from ._fake_openai_tasks import (  # noqa: F401  (tests import them here)
    MODERATION_CATEGORIES,
    MODERATION_TRIGGERS,
    VECTOR_STORE_FILES,
    decisions,
    moderations,
    vector_store_search,
)
from ._fake_openai_tasks import text_words as _words
from ._loopback import LoopbackServer
from .fake_media import Reply, form, images, speech, transcriptions
from .fake_media import split as _split
from .fake_media import tokens as _tokens


@dataclasses.dataclass
class Script:
    """The next reply: text, tool calls, stream chunk count (a stream gives the text, and each tool
    call's arguments, in that many pieces), usage, model, an error, or base64 audio spoken with
    the text as its transcript (streamed: both in pieces)."""

    reply: str | None = None
    tool_calls: list[dict[str, str]] | None = None
    chunks: int | None = None
    usage: tuple[int, int] | None = None
    model: str | None = None
    error: tuple[int, str] | None = None
    cached_tokens: int = 0
    #: Input tokens written to the cache, reported (as newer models' usage does) only when not 0.
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    audio: str | None = None
    #: A refusal (structured outputs) in place of the reply text, streamed in ``chunks`` pieces.
    refusal: str | None = None
    #: A moderation's flagged categories, one list per input (``[]``: clean); unscripted, an input
    #: is flagged for the categories whose trigger words (``MODERATION_TRIGGERS``) it contains.
    flagged: list[list[str]] | None = None
    #: A background response's final status (``completed``, ``failed``, ``incomplete`` ...).
    status: str = "completed"
    #: The audio's duration a transcription by ``whisper-1`` reports (its usage), in seconds.
    seconds: float = 4.2
    #: The service tier a chat or Responses reply names (every chunk of a stream): the request's
    #: ``service_tier`` when not scripted (``auto`` answered as ``default``), else none.
    service_tier: str | None = None
    #: Output items a Responses reply gives before its message, as the API gives them (what a
    #: hosted tool did: ``web_search_call``, ``file_search_call``, ``mcp_call`` ...).
    hosted: list[dict[str, Any]] | None = None
    #: A chat reply's finish reason (``length``, ``content_filter`` ...): by default ``tool_calls``
    #: for a reply with tool calls, else ``stop``.
    finish_reason: str | None = None
    #: Seconds a chat stream waits, after the chunk with the finish reason, before its usage event
    #: (as when the event reaches the client in a later network packet).
    usage_delay: float = 0.0
    #: False: a chat stream's tool calls carry no ``index``, as Gemini's OpenAI-compatible API
    #: streams them: each call's first piece names its id, its later pieces name nothing.
    tool_call_index: bool = True

    def input_details(self) -> dict[str, int]:
        """The usage's input details: cached tokens, and cache writes when there are any."""
        details = {"cached_tokens": self.cached_tokens}
        if self.cache_write_tokens:
            details["cache_write_tokens"] = self.cache_write_tokens
        return details


def _tier(body: dict[str, Any], script: Script) -> dict[str, str]:
    """The ``service_tier`` field of a reply (``Script.service_tier``), if it has one."""
    tier = script.service_tier or body.get("service_tier")
    return {"service_tier": "default" if tier == "auto" else tier} if isinstance(tier, str) else {}


def _bag_of_words(text: str, dims: int) -> list[float]:
    """A deterministic unit vector in which texts sharing words are close (hashed bag of words)."""
    vector = [0.0] * dims
    for word in _words(text):
        digest = hashlib.sha256(word.encode()).digest()
        vector[digest[0] % dims] += 1.0 if digest[1] % 2 else -1.0
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [v / norm for v in vector]


def _last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
                return str(content)
    value = body.get("input", body.get("prompt", ""))
    if isinstance(value, list):
        return " ".join(v if isinstance(v, str) else str(v.get("content", "")) for v in value)
    return str(value)


class FakeOpenAI(LoopbackServer):
    """``with FakeOpenAI() as srv: OpenAI(base_url=srv.base_url, api_key="x")``."""

    def __init__(self, responder: Callable[[dict[str, Any]], Script | None] | None = None) -> None:
        #: Optional function of the request body returning the reply when nothing is scripted.
        self.responder = responder
        self._scripts: deque[Script] = deque()
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self._delay = 0.0
        #: Reject requests carrying ``stream_options`` with a 400, as Azure OpenAI API versions
        #: before 2024-09-01 do.
        self.reject_stream_options = False
        #: Polls of a background response answered ``in_progress`` before its final status.
        self.background_polls = 1
        self._background = BackgroundResponses()
        #: What every vector store holds (``vector_stores.search``): (file id, file name, text).
        self.vector_store_files: list[tuple[str, str, str]] = list(VECTOR_STORE_FILES)

    # -- control ------------------------------------------------------------------------------------
    def script(self, **fields: Any) -> FakeOpenAI:
        """Queue the reply for the next request (see ``Script`` for the fields)."""
        with self._lock:
            self._scripts.append(Script(**fields))
        return self

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def _next_script(self) -> Script:
        with self._lock:
            return self._scripts.popleft() if self._scripts else Script()

    @property
    def root_url(self) -> str:
        return self.url

    @property
    def base_url(self) -> str:
        return self.root_url + "/v1"

    # -- handling -----------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        content_type = handler.headers.get("Content-Type") or ""
        body = form(content_type, raw) if content_type.startswith("multipart/") else json.loads(raw or b"{}")
        path = handler.path.split("?", 1)[0]
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "body": body})
        if self._delay:
            time.sleep(self._delay)
        if self._fetched(handler, path, handler.command):
            return
        script = self._next_script()
        if script == Script() and self.responder is not None:
            script = self.responder(body) or script
        if self.reject_stream_options and "stream_options" in body:
            script = Script(error=(400, "Unrecognized request argument supplied: stream_options"))
        if script.error is not None:
            status, message = script.error
            error = {"error": {"message": message, "type": "invalid_request_error", "code": str(status)}}
            self._send_json(handler, status, error)
            return
        route = path.rsplit("/", 2)
        endpoint = "/".join(route[-2:]) if route[-2] == "chat" else route[-1]
        handlers = {
            "chat/completions": self._chat, "completions": self._completions,
            "embeddings": self._embeddings, "responses": self._responses, "moderations": moderations,
            "compact": self._compact, "transcriptions": transcriptions, "translations": transcriptions,
            "speech": speech, "generations": images, "edits": images, "variations": images,
            "search": lambda body, script, chunks: vector_store_search(self.vector_store_files, body),
            "decisions": decisions,
        }
        produce = handlers.get(endpoint)
        if produce is None:
            self._send_json(handler, 404, {"error": {"message": f"no route {path}", "type": "not_found"}})
            return
        chunks = script.chunks or int(headers.get("x-fake-chunks", 5))
        result = produce(body, script, chunks)
        if isinstance(result, dict):
            self._send_json(handler, 200, result)
        elif isinstance(result, Reply):
            self._send_bytes(handler, result)
        else:
            self._send_stream(handler, result)

    def _fetched(self, handler: BaseHTTPRequestHandler, path: str, method: str) -> bool:
        """Answer a retrieve (``GET .../responses/{id}``, streamed or not) or a cancel (``POST
        .../cancel``) of a background response; False for any other request."""
        parts = path.split("/")
        cancel = method == "POST" and parts[-1] == "cancel"
        if cancel:
            parts.pop()
        if len(parts) < 2 or parts[-2] != "responses" or not (cancel or method == "GET"):
            return False
        payload = self._background.fetch(parts[-1], handler.path.partition("?")[2], cancel)
        if payload is None:
            self._send_json(handler, 404, {"error": {"message": f"No response with id '{parts[-1]}'.",
                                                     "type": "invalid_request_error"}})
        elif isinstance(payload, dict):
            self._send_json(handler, 200, payload)
        else:
            self._send_stream(handler, payload)
        return True

    @staticmethod
    def _send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("x-request-id", f"req_{hashlib.md5(data).hexdigest()[:12]}")
        handler.end_headers()
        handler.wfile.write(data)

    @staticmethod
    def _send_stream(handler: BaseHTTPRequestHandler, events: Iterator[Any]) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

        def write(text: str) -> None:
            data = text.encode()
            handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        try:
            for event in events:
                if isinstance(event, tuple):  # (event name, payload) for the Responses API
                    write(f"event: {event[0]}\ndata: {json.dumps(event[1])}\n\n")
                else:
                    write(f"data: {json.dumps(event)}\n\n")
            write("data: [DONE]\n\n")
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the client closed the stream early
            handler.close_connection = True

    @staticmethod
    def _send_bytes(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        """A body that is no JSON (speech audio, a transcript as text), in two chunks."""
        handler.send_response(200)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        half = len(reply.data) // 2
        for piece in (reply.data[:half], reply.data[half:]):
            if piece:
                handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    # -- payloads -----------------------------------------------------------------------------------
    @staticmethod
    def _usage(body: dict[str, Any], script: Script, text: str) -> tuple[int, int]:
        if script.usage is not None:
            return script.usage
        return _tokens(json.dumps(body.get("messages", body.get("input", body.get("prompt", ""))))), _tokens(text)

    def _chat(self, body: dict[str, Any], script: Script, chunks: int) -> dict[str, Any] | Iterator[Any]:
        model = script.model or body.get("model", "gpt-4o-mini")
        text = script.reply if script.reply is not None else ("" if script.tool_calls else
                                                               f"echo: {_last_user_text(body)}")
        prompt_tokens, completion_tokens = self._usage(body, script, text)
        usage = {
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": script.input_details(),
            "completion_tokens_details": {"reasoning_tokens": script.reasoning_tokens},
        }
        tool_calls = [
            {"id": f"call_{i}", "type": "function", "function": {"name": t["name"], "arguments": t["arguments"]}}
            for i, t in enumerate(script.tool_calls or [])
        ]
        finish = script.finish_reason or ("tool_calls" if tool_calls else "stop")
        base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": model, "system_fingerprint": "fp_fake",
                **_tier(body, script)}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if tool_calls:
                message["tool_calls"] = tool_calls
            if script.refusal is not None:
                message.update(content=None, refusal=script.refusal)
            if script.audio is not None:  # a spoken reply: base64 audio, the text as its transcript
                message.update(content=None, audio={"id": "audio_fake", "data": script.audio,
                                                    "expires_at": int(time.time()) + 3600, "transcript": text})
            return {**base, "object": "chat.completion", "usage": usage,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}]}
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def events() -> Iterator[Any]:
            chunk = {**base, "object": "chat.completion.chunk"}
            yield {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                         "finish_reason": None}]}
            for piece in _split(script.refusal, chunks) if script.refusal is not None else []:
                yield {**chunk, "choices": [{"index": 0, "delta": {"refusal": piece}, "finish_reason": None}]}
            spoken = script.audio is not None
            for piece in _split(text, chunks) if text and script.refusal is None and not spoken else []:
                yield {**chunk, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            for index, (data, piece) in enumerate(zip(_split(script.audio or "", chunks), _split(text, chunks),
                                                      strict=True) if spoken else []):
                audio = {"id": "audio_fake", "data": data, "transcript": piece} if index == 0 else {
                    "data": data, "transcript": piece}
                yield {**chunk, "choices": [{"index": 0, "delta": {"audio": audio}, "finish_reason": None}]}
            numbered = script.tool_call_index
            for i, call in enumerate(tool_calls):  # as the API streams them: the name, then the arguments in pieces
                name = {"index": i, "id": call["id"], "type": "function",
                        "function": {"name": call["function"]["name"], "arguments": ""}}
                if not numbered:
                    del name["index"]
                yield {**chunk, "choices": [{"index": 0, "delta": {"tool_calls": [name]}, "finish_reason": None}]}
                for piece in _split(call["function"]["arguments"], chunks):
                    fragment = {"index": i, "function": {"arguments": piece}} if numbered else {
                        "function": {"arguments": piece}}
                    yield {**chunk, "choices": [{"index": 0, "delta": {"tool_calls": [fragment]},
                                                 "finish_reason": None}]}
            yield {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
            if include_usage:
                time.sleep(script.usage_delay)
                yield {**chunk, "choices": [], "usage": usage}

        return events()

    def _completions(self, body: dict[str, Any], script: Script, chunks: int) -> dict[str, Any] | Iterator[Any]:
        """A legacy completion: one choice per prompt of a list of texts (streamed interleaved, as
        the API streams them), each the scripted reply or an echo of its prompt."""
        model = script.model or body.get("model", "gpt-3.5-turbo-instruct")
        prompt = body.get("prompt")
        prompts = prompt if isinstance(prompt, list) and prompt and isinstance(prompt[0], str) else [None]
        texts = [script.reply if script.reply is not None else
                 f"echo: {_last_user_text(body) if one is None else one}" for one in prompts]
        prompt_tokens, completion_tokens = self._usage(body, script, "".join(texts))
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        base = {"id": "cmpl-fake", "object": "text_completion", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            return {**base, "usage": usage, "choices": [
                {"index": i, "text": text, "finish_reason": "stop", "logprobs": None} for i, text in enumerate(texts)]}
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def events() -> Iterator[Any]:
            for pieces in zip(*(_split(text, chunks) for text in texts), strict=True):
                for i, piece in enumerate(pieces):
                    yield {**base, "choices": [{"index": i, "text": piece, "finish_reason": None, "logprobs": None}]}
            for i in range(len(texts)):
                yield {**base, "choices": [{"index": i, "text": "", "finish_reason": "stop", "logprobs": None}]}
            if include_usage:
                yield {**base, "choices": [], "usage": usage}

        return events()

    @staticmethod
    def _embeddings(body: dict[str, Any], script: Script, chunks: int) -> dict[str, Any]:
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        dims = int(body.get("dimensions") or 8)
        data = []
        for index, item in enumerate(items):
            vector = _bag_of_words(str(item), dims)
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(_tokens(str(i)) for i in items)
        return {"object": "list", "data": data, "model": script.model or body.get("model", "text-embedding-3-small"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    def _compact(self, body: dict[str, Any], script: Script, chunks: int) -> dict[str, Any]:
        """``responses.compact``: the conversation's user messages, then one (opaque) compaction item."""
        items = body.get("input") if isinstance(body.get("input"), list) else [
            {"role": "user", "content": str(body.get("input", ""))}]
        users = [{"type": "message", "id": f"msg_{i}", "role": "user", "status": "completed",
                  "content": [{"type": "input_text", "text": str(item.get("content", ""))}]}
                 for i, item in enumerate(items) if isinstance(item, dict) and item.get("role") == "user"]
        input_tokens, output_tokens = script.usage or (_tokens(json.dumps(items)), 12)
        return {"id": "cmp_fake", "object": "response.compaction", "created_at": int(time.time()),
                "output": [*users, {"type": "compaction", "id": "cmp_item", "encrypted_content": "gAAA"}],
                "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                          "total_tokens": input_tokens + output_tokens,
                          "input_tokens_details": {"cached_tokens": 0},
                          "output_tokens_details": {"reasoning_tokens": 0}}}

    def _responses(self, body: dict[str, Any], script: Script, chunks: int) -> dict[str, Any] | Iterator[Any]:
        model = script.model or body.get("model", "gpt-4o-mini")
        text = script.reply if script.reply is not None else ("" if script.tool_calls else
                                                               f"echo: {_last_user_text(body)}")
        input_tokens, output_tokens = self._usage(body, script, text)
        if script.refusal is not None:
            text = ""
        content = ([{"type": "refusal", "refusal": script.refusal}] if script.refusal is not None
                   else [{"type": "output_text", "text": text, "annotations": []}])
        message = {"type": "message", "id": "msg_fake", "role": "assistant", "status": "completed",
                   "content": content}
        calls = [{"type": "function_call", "id": f"fc_{i}", "call_id": f"call_{i}", "name": t["name"],
                  "arguments": t["arguments"], "status": "completed"}
                 for i, t in enumerate(script.tool_calls or [])]
        response = {
            "id": "resp_fake", "object": "response", "created_at": int(time.time()), "model": model,
            "status": "completed", "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "output": [*(script.hosted or ())] + ([message] if text or script.refusal is not None or not calls
                                                  else []) + calls,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                      "total_tokens": input_tokens + output_tokens,
                      "input_tokens_details": script.input_details(),
                      "output_tokens_details": {"reasoning_tokens": script.reasoning_tokens}},
            **_tier(body, script),
        }
        if body.get("background"):
            response["background"] = True
        elif not body.get("stream"):
            return response

        def events() -> Iterator[Any]:
            # as the API streams them: each output item added, its deltas, then done
            seq = 0

            def event(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
                nonlocal seq
                seq += 1
                return kind, {"type": kind, "sequence_number": seq - 1, **fields}

            yield event("response.created", response={**response, "status": "in_progress", "output": [],
                                                      "usage": None})
            for index, item in enumerate(response["output"]):
                if item["type"] == "message" and script.refusal is not None:
                    yield event("response.output_item.added", output_index=index,
                                item={**item, "status": "in_progress", "content": []})
                    for piece in _split(script.refusal, chunks):
                        yield event("response.refusal.delta", item_id=item["id"], output_index=index,
                                    content_index=0, delta=piece)
                    yield event("response.refusal.done", item_id=item["id"], output_index=index,
                                content_index=0, refusal=script.refusal)
                elif item["type"] == "message":
                    yield event("response.output_item.added", output_index=index,
                                item={**item, "status": "in_progress", "content": []})
                    part = {"type": "output_text", "text": "", "annotations": []}
                    yield event("response.content_part.added", item_id=item["id"], output_index=index,
                                content_index=0, part=part)
                    for piece in _split(text, chunks):
                        yield event("response.output_text.delta", item_id=item["id"], output_index=index,
                                    content_index=0, delta=piece, logprobs=[])
                    yield event("response.output_text.done", item_id=item["id"], output_index=index,
                                content_index=0, text=text, logprobs=[])
                    yield event("response.content_part.done", item_id=item["id"], output_index=index,
                                content_index=0, part={**part, "text": text})
                elif item["type"] != "function_call":  # a hosted tool's call: as it ends
                    yield event("response.output_item.added", output_index=index,
                                item={**item, "status": "in_progress"})
                else:
                    yield event("response.output_item.added", output_index=index,
                                item={**item, "status": "in_progress", "arguments": ""})
                    for piece in _split(item["arguments"], chunks):
                        yield event("response.function_call_arguments.delta", item_id=item["id"],
                                    output_index=index, delta=piece)
                    yield event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                                arguments=item["arguments"])
                yield event("response.output_item.done", output_index=index, item=item)
            yield event("response.completed", response=response)

        if body.get("background"):  # accepted: run later, fetched (or streamed again) by its id
            return self._background.accept(response, script.status, self.background_polls, events(),
                                           bool(body.get("stream")))
        return events()
