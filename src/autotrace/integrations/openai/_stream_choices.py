"""The choices of a chat or legacy completions stream as their pieces arrive (``_ChoiceParts``):
text, refusal, spoken reply, tool calls (numbered or not), the deprecated function call, reasoning
and finish reason; each growing text held only to the value limit."""

from __future__ import annotations

from typing import Any

from ... import bounds
from ..._internal import count
from ...runtime import state as runtime
from ..media import without_data_urls

#: Tool calls recorded per choice (a reply holds a few); the pieces of later ones are dropped, counted.
_MAX_TOOL_CALLS = 128
#: Choices recorded per stream (``n``; the API allows 128); the pieces of later ones are dropped, counted.
_MAX_CHOICES = 128


def _fold_choices(choices: dict[int, _ChoiceParts], chunks: list[Any], completion: bool) -> None:
    """``StreamState._fold`` for a stream of several choices (``n``), each read by its index."""
    for chunk in chunks:
        for choice in chunk.choices or ():
            parts = choices.get(choice.index)
            if parts is None:
                if len(choices) >= _MAX_CHOICES or not isinstance(choice.index, int):
                    count("openai.stream_choice_pieces_dropped")
                    continue
                parts = choices[choice.index] = _ChoiceParts()
            if choice.finish_reason is not None:
                parts.finish_reason = choice.finish_reason
            if completion:
                if piece := choice.text:
                    parts.text.append(piece)
                continue
            delta = choice.delta
            if delta is not None:
                if content := delta.content:
                    parts.text.append(content)
                elif refusal := delta.refusal:
                    parts.add_refusal(refusal)
                elif audio := getattr(delta, "audio", None):
                    parts.add_audio(audio)
                elif function_call := delta.function_call:
                    parts.add_function_call(function_call)
                elif reasoning := _reasoning(delta):
                    parts.add_reasoning(reasoning)
                if tool_calls := delta.tool_calls:
                    parts.add_tool_calls(tool_calls)


class _ChoiceParts:
    """One choice of a stream as its pieces arrive: its text (or refusal, or spoken reply), tool
    calls (or the deprecated function call), reasoning and finish reason."""

    __slots__ = ("audio", "finish_reason", "function_call", "reasoning", "refusal", "text", "tool_calls",
                 "unnumbered_dropped")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.tool_calls: dict[int, _ToolCallParts] = {}
        #: Whether an unnumbered tool call past ``_MAX_TOOL_CALLS`` was dropped: the pieces naming no
        #: call that follow are its (or a later one's), not the latest kept call's.
        self.unnumbered_dropped = False
        self.finish_reason: str | None = None
        #: A refusal's pieces (structured outputs), None until one arrives.
        self.refusal: list[str] | None = None
        #: A spoken reply (``modalities: ["audio"]``), None until one arrives.
        self.audio: _AudioParts | None = None
        #: A call of the deprecated ``functions`` (``delta.function_call``), None until one arrives.
        self.function_call: _ToolCallParts | None = None
        #: The field reasoning comes in (``_reasoning``) and its pieces, None until one arrives.
        self.reasoning: tuple[str, list[str]] | None = None

    def add_refusal(self, piece: str) -> None:
        if self.refusal is None:
            self.refusal = []
        bounds.keep_piece(self.refusal, piece, runtime.max_value_bytes)

    def add_audio(self, audio: Any) -> None:
        if self.audio is None:
            self.audio = _AudioParts()
        self.audio.add(audio)

    def add_reasoning(self, found: tuple[str, str]) -> None:
        if self.reasoning is None:
            self.reasoning = (found[0], [])
        bounds.keep_piece(self.reasoning[1], found[1], runtime.max_value_bytes)

    def add_function_call(self, function: Any) -> None:
        if self.function_call is None:
            self.function_call = _ToolCallParts()
        self.function_call.add(function)

    def add_tool_calls(self, calls: Any) -> None:
        for call in calls:
            index = call.index
            numbered = type(index) is int
            if not numbered:  # a server that numbers no call (Gemini's): each new id is one
                index = self._unnumbered(call.id)
            parts = self.tool_calls.get(index)
            if parts is None:
                if len(self.tool_calls) >= _MAX_TOOL_CALLS:
                    count("openai.stream_tool_call_pieces_dropped")
                    self.unnumbered_dropped = self.unnumbered_dropped or not numbered
                    continue
                parts = self.tool_calls[index] = _ToolCallParts()
            if call.id:
                parts.id = call.id
            function = call.function
            if function is not None:
                if name := function.name:
                    bounds.keep_piece(parts.name, name, runtime.max_value_bytes)
                if arguments := function.arguments:
                    bounds.keep_piece(parts.arguments, arguments, runtime.max_value_bytes)

    def _unnumbered(self, call_id: Any) -> int:
        """The index for a tool call's piece that has none: a new call's when it names another id than
        the latest call's, else the latest call's (a piece of its arguments), or, once such a new call
        was dropped (too many), one no call has (dropped too, not added to the latest kept call)."""
        calls = self.tool_calls
        if not calls:
            return 0
        if self.unnumbered_dropped:
            return max(calls) + 1
        latest = next(reversed(calls))
        return max(calls) + 1 if call_id and call_id != calls[latest].id else latest

    def bound(self) -> None:
        """Keep a long text only to the value limit (a long stream's)."""
        if len(self.text) >= bounds.JOIN_PIECES_AT:
            bounds.bound_pieces(self.text, runtime.max_value_bytes)

    def output(self, completion: bool) -> Any:
        """The recorded output: the text of a legacy completion, else the assistant's message (a data
        URL in its text noted, as in a reply not streamed)."""
        text = without_data_urls("".join(self.text))
        if completion:
            return text
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if self.refusal is not None:  # as a parsed message holds it
            message["refusal"] = "".join(self.refusal)
        if self.audio is not None:
            message["audio"] = self.audio.record()
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i].record() for i in sorted(self.tool_calls)]
        if self.function_call is not None:  # as a parsed message holds it
            message["function_call"] = self.function_call.record()["function"]
        if self.reasoning is not None:  # as a parsed message holds it, under the server's name
            message[self.reasoning[0]] = "".join(self.reasoning[1])
        return message


class _ToolCallParts:
    """One streamed tool call, as its pieces arrive (joined once, for the record; a long name or
    long arguments are held only to the value limit, as the output's text)."""

    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: list[str] = []
        self.arguments: list[str] = []

    def add(self, function: Any) -> None:
        """A piece of the call's function: its name, or some of its arguments (``add_tool_calls``
        does the same inline: it runs for every piece of every streamed tool call)."""
        if name := function.name:
            bounds.keep_piece(self.name, name, runtime.max_value_bytes)
        if arguments := function.arguments:
            bounds.keep_piece(self.arguments, arguments, runtime.max_value_bytes)

    def record(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function",
                "function": {"name": "".join(self.name), "arguments": "".join(self.arguments)}}


class _AudioParts:
    """A streamed spoken reply: its id, its transcript as the pieces arrive, only the length of
    its base64 audio (noted as an input's media is, never kept), and its expiry (the last update's)."""

    __slots__ = ("data_chars", "expires_at", "id", "transcript")

    def __init__(self) -> None:
        self.id: str | None = None
        self.transcript: list[str] = []
        self.data_chars = 0
        self.expires_at: Any = None

    def add(self, audio: Any) -> None:
        if audio.id:
            self.id = audio.id
        if transcript := audio.transcript:
            bounds.keep_piece(self.transcript, transcript, runtime.max_value_bytes)
        if isinstance(data := audio.data, str):
            self.data_chars += len(data)
        if (expires_at := getattr(audio, "expires_at", None)) is not None:
            self.expires_at = expires_at

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"id": self.id, "transcript": "".join(self.transcript)}
        if self.data_chars:
            record["data"] = f"<base64, {self.data_chars} chars>"
        if self.expires_at is not None:  # as a parsed message holds it
            record["expires_at"] = self.expires_at
        return record


def _has_output(choice: Any, completion: bool) -> bool:
    """Whether a chunk's choice carries output (text, a tool call's piece, speech); the last
    update of a spoken reply, after its finish reason, holds only the audio's expiry."""
    if completion:
        return bool(choice.text)
    delta = choice.delta
    return delta is not None and bool(delta.content or delta.tool_calls or delta.refusal or delta.function_call
                                      or _spoken(getattr(delta, "audio", None)) or _reasoning(delta))


#: The fields of a chat delta that carry a reasoning model's reasoning, streamed before the reply
#: by compatible servers: DeepSeek and vLLM's, OpenRouter and Ollama's.
_REASONING_FIELDS = ("reasoning_content", "reasoning")


def _reasoning(delta: Any) -> tuple[str, str] | None:
    """A piece of reasoning in a chat delta, with its field's name; None if there is none. The
    SDK declares no such field: it is read where pydantic keeps undeclared ones (an attribute
    lookup that misses costs microseconds)."""
    fields = getattr(delta, "__pydantic_extra__", None)
    if fields is None:  # pydantic 1 keeps them with the declared ones
        fields = getattr(delta, "__dict__", None)
    if fields:
        for name in _REASONING_FIELDS:
            piece = fields.get(name)
            if type(piece) is str and piece:
                return name, piece
    return None


def _spoken(audio: Any) -> bool:
    """Whether a streamed audio update carries speech (its data or transcript)."""
    return audio is not None and bool(audio.data or audio.transcript)
