"""What an OpenAI stream has produced so far (``StreamState``), per operation: chat and legacy
completions (per choice: text, tool calls, reasoning, finish reason), and Responses API events
(text, output items done, the final response). Chunks are kept as they come and read in batches,
away from the caller's loop; growing texts are held only to the value limit plus the redaction
margin.
"""

from __future__ import annotations

import time
from typing import Any

from ... import bounds
from ..._internal import count, guarded_failure
from ...observation import STREAM_CLOSED
from ...runtime import state as runtime
from . import _extract, pricing
from ._stream_choices import _ChoiceParts, _fold_choices, _has_output, _reasoning, _ToolCallParts
from ._usage_event import UsageEventCutter, watch

#: Chunks kept before they are read in one go (bounds what a long stream holds on to).
_FOLD_EVERY = 64
#: Output items of a Responses stream kept until its final response (a reply holds a few); later ones
#: are dropped, counted.
_MAX_ITEMS = 128


class StreamState:
    """What a stream has produced so far, per operation. Per chunk it only keeps the chunk (and
    notes the first token's time); chunks are read in batches, away from the caller's loop."""

    __slots__ = ("choices", "chunks", "cutter", "error", "first", "first_token_ns", "hide_usage_chunk", "items",
                 "model", "operation", "options", "response", "tier", "usage")
    #: The class of the tracking of a stream with this state, when not ``_stream.StreamTracking``.
    tracking: Any = None

    def __init__(self, operation: str, hide_usage_chunk: bool, choices: int = 1, options: Any = None) -> None:
        self.operation = operation
        #: The request's options: the model they ask for prices a reply that names none.
        self.options = options
        self.hide_usage_chunk = hide_usage_chunk
        self.chunks: list[Any] = []
        #: The first choice, the only one unless the caller asked for several (``n``).
        self.first = _ChoiceParts()
        #: Every choice by its index, when the caller asked for several.
        self.choices: dict[int, _ChoiceParts] | None = {0: self.first} if choices > 1 else None
        self.first_token_ns: int | None = None
        self.model: str | None = None
        #: The service tier the chunk that first named the model names (``pricing.tier_share``).
        self.tier: Any = None
        self.usage: Any = None
        #: The Responses API's final response (completed, incomplete or failed), and an error event's message.
        self.response: Any = None
        self.error: str | None = None
        #: The Responses API's output items done so far (``response.output_item.done``), the
        #: output of a stream its reader leaves before the final response.
        self.items: list[Any] = []
        #: Set when the usage event autotrace asked for is cut from the bytes (``watch_usage_event``).
        self.cutter: UsageEventCutter | None = None

    @property
    def text(self) -> list[str]:
        """The first choice's text so far, in pieces."""
        return self.first.text

    @property
    def tool_calls(self) -> dict[int, _ToolCallParts]:
        """The first choice's tool calls so far, by index."""
        return self.first.tool_calls

    def watch_usage_event(self, stream: Any) -> None:
        """Have the usage event autotrace asked for cut out of ``stream``'s bytes before the SDK
        decodes it (``_usage_event``); what the cutter cannot take, the SDK decodes and ``take`` hides."""
        self.cutter = UsageEventCutter()
        watch(stream, self.cutter)

    def take(self, chunk: Any) -> bool:
        """Keep one chunk; False if the caller must not see it (the usage chunk autotrace asked for).
        Never raises: a chunk autotrace cannot read still reaches the caller."""
        try:
            chunks = self.chunks
            chunks.append(chunk)
            if self.first_token_ns is None and self._is_token(chunk):
                self.first_token_ns = time.time_ns()
            if len(chunks) >= _FOLD_EVERY:
                self.fold()
            return not (self.hide_usage_chunk and _is_usage_chunk(chunk))
        except Exception as exc:
            guarded_failure("openai.stream_chunk", exc)
            return True

    def _is_token(self, chunk: Any) -> bool:
        if self.operation == "responses":
            return getattr(chunk, "type", "") in _TOKEN_EVENTS
        choices = chunk.choices
        if not choices:
            return False
        return _has_output(choices[0], self.operation == "text_completion")

    def fold(self) -> None:
        """Read the kept chunks into the accumulated output, usage, model and finish reason. Never
        raises. The model, usage and finish reason are looked for once per batch, from its start or
        end, where the API puts them; only the output is read from every chunk, in one loop with no
        call per chunk (this runs for every chunk of every stream)."""
        chunks = self.chunks[:]
        self.chunks.clear()  # the same list: the stream's traced loop holds it
        try:
            self._fold(chunks)
            if self.choices is not None:
                for parts in self.choices.values():
                    parts.bound()
            elif len(self.first.text) >= bounds.JOIN_PIECES_AT:
                self.first.bound()
        except Exception as exc:
            guarded_failure("openai.stream_fold", exc)

    def _fold(self, chunks: list[Any]) -> None:
        if self.operation == "responses":
            for event in chunks:
                self._record_event(event)
            return
        if self.model is None:  # the first model named (Azure's content-filter chunk names none)
            for chunk in chunks:
                if model := getattr(chunk, "model", None):
                    self.model, self.tier = model, getattr(chunk, "service_tier", None)
                    break
        cutter = self.cutter
        if cutter is None or cutter.event is None:  # else the usage event was cut from the bytes
            for chunk in reversed(chunks):  # the latest usage wins (usually the last chunk's)
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    self.usage = usage
                    break
        completion = self.operation == "text_completion"
        if self.choices is not None:
            _fold_choices(self.choices, chunks, completion)
            return
        first = self.first
        for chunk in reversed(chunks):  # the finish reason: on the last chunk with choices, or
            choices = chunk.choices     # before annotations that follow it (Azure's content filter)
            if choices:
                choice = choices[0]
                finish_reason = choice.finish_reason
                if finish_reason is not None:
                    first.finish_reason = finish_reason
                    break
                if _has_output(choice, completion):  # the stream goes on past this batch
                    break
        text = first.text
        for chunk in chunks:  # every read of a chunk's field goes through pydantic: each once
            choices = chunk.choices
            if not choices:
                continue
            if completion:
                if piece := choices[0].text:
                    text.append(piece)
                continue
            delta = choices[0].delta
            if delta is not None:
                if content := delta.content:
                    text.append(content)
                elif refusal := delta.refusal:  # read only when there is no text: a refusal has none
                    first.add_refusal(refusal)
                elif audio := getattr(delta, "audio", None):  # a spoken reply (no text); SDKs before 1.51 lack the field
                    first.add_audio(audio)
                elif function_call := delta.function_call:  # a call of the deprecated ``functions``
                    first.add_function_call(function_call)
                elif reasoning := _reasoning(delta):
                    first.add_reasoning(reasoning)
                if tool_calls := delta.tool_calls:
                    first.add_tool_calls(tool_calls)

    def _record_event(self, event: Any) -> None:
        """One Responses API event: its text, its model, its final response, or an error."""
        kind = getattr(event, "type", "")
        if kind == "response.output_text.delta":
            if isinstance(delta := getattr(event, "delta", None), str):
                bounds.keep_piece(self.first.text, delta, runtime.max_value_bytes)
        elif kind == "response.refusal.delta":  # kept like text: a reader may stop before the final response
            if isinstance(delta := getattr(event, "delta", None), str):
                self.first.add_refusal(delta)
        elif kind == "response.output_item.done":  # a message's text and refusal are in it from now on
            if (item := getattr(event, "item", None)) is None:
                return
            if len(self.items) < _MAX_ITEMS:
                self.items.append(item)
            else:
                count("openai.stream_items_dropped")
            if getattr(item, "type", None) == "message":
                self.first.text.clear()
                self.first.refusal = None
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.response = event.response
        elif kind == "response.created":
            self.model = getattr(event.response, "model", None)
        elif kind == "error":
            self.error = str(getattr(event, "message", None) or getattr(event, "code", None) or "error event")

    def requested_model(self) -> str | None:
        """The model the request asked for (a string, or None): what prices a reply naming none."""
        model = _extract.priced_model(None, self.options)
        return model if isinstance(model, str) else None

    def cut_usage_event(self) -> bytes | None:
        """The usage event's JSON text, if it was cut from the bytes (its usage is then the final one,
        read by ``usage_event_fields`` on the pipeline thread)."""
        cutter = self.cutter
        return None if cutter is None else cutter.event

    def fields(self, interrupted: bool = False) -> dict[str, Any]:
        """The stream's fields, read from its chunks; usage and cost only if the usage event was not
        cut from the bytes (a chunk's running count, if any, is not the final one then).
        ``interrupted``: the reader stopped before the end; WARNING if the reply had not finished."""
        fields = self._fields()
        if interrupted and self._unfinished():
            fields["level"], fields["status_message"] = "WARNING", STREAM_CLOSED
        return fields

    def _unfinished(self) -> bool:
        """Whether the reply had not finished when the reader stopped (no finish reason for some
        choice; for a Responses stream no final response or error event)."""
        if self.operation == "responses":
            return self.response is None and self.error is None
        choices = self.choices
        if choices is not None and len(choices) > 1:
            return any(choice.finish_reason is None for choice in choices.values())
        return self.first.finish_reason is None

    def _fields(self) -> dict[str, Any]:
        self.fold()
        if self.operation == "responses":
            return self._response_fields()
        usage = _extract.usage_fields(self.usage) if self.cut_usage_event() is None else None
        completion = self.operation == "text_completion"
        choices = self.choices
        if choices is not None and len(choices) > 1:  # as a response of several choices: a list, by index
            output: Any = [choices[i].output(completion) for i in sorted(choices)]
        else:
            output = self.first.output(completion)
        fields = {"response_model": self.model, "usage": usage, "finish_reason": self.first.finish_reason,
                  # no usage (cut from the bytes: priced on the pipeline thread), no cost
                  "cost": pricing.cost(_extract.priced_model(self.model, self.options), usage, self.tier)
                  if usage else None,
                  "completion_start_time": self.first_token_ns,
                  "output": output}
        if self.tier is not None and self.tier != "default":
            fields["metadata"] = _extract.tier_metadata(self.tier)
        return fields

    def _response_fields(self) -> dict[str, Any]:
        """A Responses API stream's fields: from its final response, else (the caller stopped early,
        or an error event ended it) from the text and model streamed so far."""
        streamed = self._streamed_output()
        if self.response is not None:
            fields = _extract.response_fields("responses", self.response, self.options)
            if not fields.get("output") and streamed:  # a failed response has no output: what was streamed
                fields["output"] = streamed
        else:
            fields = {"response_model": self.model, "output": streamed}
        if self.error is not None:
            fields["level"], fields["status_message"] = "ERROR", self.error
        fields["completion_start_time"] = self.first_token_ns
        return fields

    def _streamed_output(self) -> Any:
        """What a Responses stream streamed, without its final response: its output items done so
        far and the message still streaming, recorded as a final response's would be
        (``_extract.partial_responses_output``); None if nothing was streamed."""
        text = "".join(self.first.text)
        refusal = self.first.refusal
        pending = None
        if refusal is not None:  # the message item as the API gives it (as a finished refusal is recorded)
            content = [{"type": "output_text", "text": text}] if text else []
            content.append({"type": "refusal", "refusal": "".join(refusal)})
            pending = {"type": "message", "role": "assistant", "status": "in_progress", "content": content}
        elif text:
            pending = {"type": "message", "role": "assistant", "status": "in_progress",
                       "content": [{"type": "output_text", "text": text}]}
        return _extract.partial_responses_output(self.items, pending)


#: Responses API events that carry the first output: text, a refusal, speech, reasoning (its text or
#: summary: output tokens, streamed first), or what the model writes for a tool (a function's or MCP
#: tool's arguments, a custom tool's input, code, a command).
_TOKEN_EVENTS = frozenset({"response.output_text.delta", "response.function_call_arguments.delta",
                           "response.reasoning_text.delta", "response.reasoning_summary_text.delta",
                           "response.refusal.delta", "response.custom_tool_call_input.delta",
                           "response.audio.delta", "response.audio.transcript.delta",
                           "response.mcp_call_arguments.delta", "response.code_interpreter_call_code.delta",
                           "response.shell_call_command.delta"})


def _is_usage_chunk(chunk: Any) -> bool:
    """Whether ``chunk`` is a usage-only chunk (usage, no choices); never raises."""
    return getattr(chunk, "usage", None) is not None and not getattr(chunk, "choices", True)
