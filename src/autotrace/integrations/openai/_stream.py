"""One transparent proxy for OpenAI streams, sync and async.

It records the first token time, accumulates the output cheaply, captures usage (hiding the
usage-only chunk when autotrace asked for it and the caller did not), and ends the observation
exactly once on every exit path: exhausted, ``break`` + ``close()``, ``with``/``async with``, an
exception, or abandonment (garbage collection).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import wrapt

from ..._internal import guarded_failure
from ...observation import Observation
from . import _extract, pricing
from ._usage_event import UsageEventCutter, usage_event_fields, watch

#: Chunks kept before they are read in one go (bounds what a long stream holds on to).
_FOLD_EVERY = 64


class StreamState:
    """What a stream has produced so far, per operation. Per chunk it only keeps the chunk (and
    notes the first token's time); chunks are read in batches, away from the caller's loop."""

    __slots__ = ("chunks", "cutter", "finish_reason", "first_token_ns", "hide_usage_chunk", "model", "operation",
                 "response", "text", "tool_calls", "usage")

    def __init__(self, operation: str, hide_usage_chunk: bool) -> None:
        self.operation = operation
        self.hide_usage_chunk = hide_usage_chunk
        self.chunks: list[Any] = []
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.first_token_ns: int | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.response: Any = None
        #: Set when the usage event autotrace asked for is cut from the bytes (``watch_usage_event``).
        self.cutter: UsageEventCutter | None = None

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
            return getattr(chunk, "type", "") == "response.output_text.delta"
        choices = chunk.choices
        if not choices:
            return False
        if self.operation == "text_completion":
            return bool(choices[0].text)
        delta = choices[0].delta
        return delta is not None and bool(delta.content or delta.tool_calls)

    def fold(self) -> None:
        """Read the kept chunks into the accumulated output, usage, model and finish reason. Never
        raises. The model, usage and finish reason are looked for once per batch, from its start or
        end, where the API puts them; only the output is read from every chunk, in one loop with no
        call per chunk (this runs for every chunk of every stream)."""
        chunks = self.chunks[:]
        self.chunks.clear()  # the same list: the stream proxy's loop holds it
        try:
            self._fold(chunks)
        except Exception as exc:
            guarded_failure("openai.stream_fold", exc)

    def _fold(self, chunks: list[Any]) -> None:
        if self.operation == "responses":
            for event in chunks:
                self._record_event(event)
            return
        if self.model is None:  # the first model named (Azure's content-filter chunk names none)
            self.model = next((model for chunk in chunks if (model := getattr(chunk, "model", None))), None)
        cutter = self.cutter
        if cutter is None or cutter.event is None:  # else the usage event was cut from the bytes
            for chunk in reversed(chunks):  # the latest usage wins (usually the last chunk's)
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    self.usage = usage
                    break
        for chunk in reversed(chunks):  # the finish reason is on the last chunk with choices
            choices = chunk.choices
            if choices:
                finish_reason = choices[0].finish_reason
                if finish_reason is not None:
                    self.finish_reason = finish_reason
                break
        completion, text = self.operation == "text_completion", self.text
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
                if tool_calls := delta.tool_calls:
                    self._tool_calls(tool_calls)

    def _tool_calls(self, calls: Any) -> None:
        for call in calls:
            entry = self.tool_calls.setdefault(call.index, {"id": None, "type": "function",
                                                           "function": {"name": "", "arguments": ""}})
            if call.id:
                entry["id"] = call.id
            function = call.function
            if function is not None:
                entry["function"]["name"] += function.name or ""
                entry["function"]["arguments"] += function.arguments or ""

    def _record_event(self, event: Any) -> None:
        if getattr(event, "type", "") in ("response.completed", "response.incomplete", "response.failed"):
            self.response = event.response

    def cut_usage_event(self) -> bytes | None:
        """The usage event's JSON text, if it was cut from the bytes (its usage is then the final one,
        read by ``usage_event_fields`` on the pipeline thread)."""
        cutter = self.cutter
        return None if cutter is None else cutter.event

    def fields(self) -> dict[str, Any]:
        """The stream's fields, read from its chunks; usage and cost only if the usage event was not
        cut from the bytes (a chunk's running count, if any, is not the final one then)."""
        self.fold()
        if self.response is not None:
            fields = _extract.response_fields("responses", self.response)
            fields["completion_start_time"] = self.first_token_ns
            return fields
        usage = _extract.usage_fields(self.usage) if self.cut_usage_event() is None else None
        fields: dict[str, Any] = {"response_model": self.model, "usage": usage, "finish_reason": self.finish_reason,
                                  "cost": pricing.cost(self.model, usage), "completion_start_time": self.first_token_ns}
        text = "".join(self.text)
        if self.operation == "text_completion":
            fields["output"] = text
        else:
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if self.tool_calls:
                message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
            fields["output"] = message
        return fields


def _is_usage_chunk(chunk: Any) -> bool:
    """Whether ``chunk`` is a usage-only chunk (usage, no choices); never raises."""
    return getattr(chunk, "usage", None) is not None and not getattr(chunk, "choices", True)


class _Ending:
    """Around a whole iteration of a traced stream: its observation ends however it stops (a
    class: a generator-based context manager costs several more calls per stream)."""

    __slots__ = ("stream",)

    def __init__(self, stream: TracedStream) -> None:
        self.stream = stream

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> None:
        # GeneratorExit: the caller stopped early (break, close), which is not an error
        self.stream._self_finish(None if kind is None or kind is GeneratorExit else error)


class TracedStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """Behaves exactly like the ``Stream``/``AsyncStream`` it wraps."""

    __slots__ = ("_self_done", "_self_obs", "_self_state")

    def __init__(self, stream: Any, obs: Observation, state: StreamState) -> None:
        wrapt.ObjectProxy.__init__(self, stream)
        self._self_obs = obs
        self._self_state = state
        self._self_done = False

    def _self_finish(self, error: BaseException | None = None) -> None:
        if self._self_done:
            return
        self._self_done = True
        try:
            obs, state = self._self_obs, self._self_state
            obs.defer(state.fields)
            usage_event = state.cut_usage_event()
            if usage_event is not None:  # bytes: parsed on the pipeline thread
                obs.defer(usage_event_fields, usage_event, late=True)
            if error is not None:
                obs.record_error(error)
            obs.end()
        except Exception as exc:
            guarded_failure("openai.stream_finish", exc)

    # -- sync ---------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        return self._self_iterate()  # a generator: cheaper per chunk than a __next__ method

    def _self_iterate(self) -> Iterator[Any]:
        state = self._self_state
        with _Ending(self):
            chunks = iter(self.__wrapped__)
            for chunk in chunks:  # until the first token, ``take`` looks at every chunk
                if state.take(chunk):
                    yield chunk
                if state.first_token_ns is not None:
                    break
            kept, hide = state.chunks, state.hide_usage_chunk
            for chunk in chunks:  # then only keeps it: no call per chunk (``take`` without the token check)
                kept.append(chunk)
                if len(kept) >= _FOLD_EVERY:
                    state.fold()
                if not (hide and getattr(chunk, "usage", None) is not None and _is_usage_chunk(chunk)):
                    yield chunk

    def __next__(self) -> Any:
        while True:
            try:
                chunk = self.__wrapped__.__next__()
            except StopIteration:
                self._self_finish()
                raise
            except BaseException as error:
                self._self_finish(error)
                raise
            if self._self_state.take(chunk):
                return chunk

    def __enter__(self) -> TracedStream:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_finish()

    def close(self) -> Any:
        try:
            result = self.__wrapped__.close()
        except BaseException:
            self._self_finish()
            raise
        if inspect.isawaitable(result):  # AsyncStream.close is a coroutine
            return self._self_after(result)
        self._self_finish()
        return result

    async def _self_after(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        finally:
            self._self_finish()

    # -- async --------------------------------------------------------------------------------------
    def __aiter__(self) -> AsyncIterator[Any]:
        return self._self_aiterate()

    async def _self_aiterate(self) -> AsyncIterator[Any]:
        state = self._self_state
        with _Ending(self):  # as ``_self_iterate``
            chunks = aiter(self.__wrapped__)
            async for chunk in chunks:
                if state.take(chunk):
                    yield chunk
                if state.first_token_ns is not None:
                    break
            kept, hide = state.chunks, state.hide_usage_chunk
            async for chunk in chunks:
                kept.append(chunk)
                if len(kept) >= _FOLD_EVERY:
                    state.fold()
                if not (hide and getattr(chunk, "usage", None) is not None and _is_usage_chunk(chunk)):
                    yield chunk

    async def __anext__(self) -> Any:
        while True:
            try:
                chunk = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                self._self_finish()
                raise
            except BaseException as error:
                self._self_finish(error)
                raise
            if self._self_state.take(chunk):
                return chunk

    async def __aenter__(self) -> TracedStream:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(*exc_info)
        finally:
            self._self_finish()

    def __del__(self) -> None:  # abandoned without being exhausted or closed
        self._self_finish()
