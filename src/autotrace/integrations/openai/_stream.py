"""One transparent proxy for OpenAI streams, sync and async.

It records the first token time, accumulates the output cheaply, captures usage (hiding the
usage-only chunk when autotrace asked for it and the caller did not), and ends the observation
exactly once on every exit path: exhausted, ``break`` + ``close()``, ``with``/``async with``, an
exception, or abandonment (garbage collection).
"""

from __future__ import annotations

import inspect
from typing import Any

import wrapt

from ..._internal import guarded_failure
from ...observation import Observation
from . import _extract, pricing


class StreamState:
    """What a stream has produced so far, per operation."""

    __slots__ = ("finish_reason", "hide_usage_chunk", "model", "operation", "response", "text", "tool_calls",
                 "usage")

    def __init__(self, operation: str, hide_usage_chunk: bool) -> None:
        self.operation = operation
        self.hide_usage_chunk = hide_usage_chunk
        self.text: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.response: Any = None

    def record(self, chunk: Any, obs: Observation) -> bool:
        """Take in one chunk; False if the caller must not see it (the usage chunk autotrace asked for)."""
        if self.operation == "responses":
            return self._record_event(chunk, obs)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        if self.model is None:
            self.model = getattr(chunk, "model", None)
        choices = chunk.choices
        if not choices:
            return not (self.hide_usage_chunk and usage is not None)
        choice = choices[0]
        if choice.finish_reason is not None:
            self.finish_reason = choice.finish_reason
        if self.operation == "text_completion":
            if choice.text:
                obs.mark_first_token()
                self.text.append(choice.text)
            return True
        delta = choice.delta
        if delta is None:
            return True
        if delta.content:
            obs.mark_first_token()
            self.text.append(delta.content)
        if delta.tool_calls:
            obs.mark_first_token()
            for call in delta.tool_calls:
                entry = self.tool_calls.setdefault(call.index, {"id": None, "type": "function",
                                                               "function": {"name": "", "arguments": ""}})
                if call.id:
                    entry["id"] = call.id
                function = call.function
                if function is not None:
                    entry["function"]["name"] += function.name or ""
                    entry["function"]["arguments"] += function.arguments or ""
        return True

    def _record_event(self, event: Any, obs: Observation) -> bool:
        kind = getattr(event, "type", "")
        if kind == "response.output_text.delta":
            obs.mark_first_token()
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.response = event.response
        return True

    def fields(self) -> dict[str, Any]:
        if self.response is not None:
            return _extract.response_fields("responses", self.response)
        usage = _extract.usage_fields(self.usage)
        fields: dict[str, Any] = {"response_model": self.model, "usage": usage, "finish_reason": self.finish_reason,
                                  "cost": pricing.cost(self.model, usage)}
        text = "".join(self.text)
        if self.operation == "text_completion":
            fields["output"] = text
        else:
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if self.tool_calls:
                message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
            fields["output"] = message
        return fields


class TracedStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """Behaves exactly like the ``Stream``/``AsyncStream`` it wraps."""

    def __init__(self, stream: Any, obs: Observation, state: StreamState) -> None:
        super().__init__(stream)
        self._self_obs = obs
        self._self_state = state
        self._self_done = False

    def _self_finish(self, error: BaseException | None = None) -> None:
        if self._self_done:
            return
        self._self_done = True
        try:
            obs = self._self_obs
            obs.defer(self._self_state.fields)
            if error is not None:
                obs.record_error(error)
            obs.end()
        except Exception as exc:
            guarded_failure("openai.stream_finish", exc)

    def _self_take(self, chunk: Any) -> bool:
        try:
            return self._self_state.record(chunk, self._self_obs)
        except Exception as exc:
            guarded_failure("openai.stream_chunk", exc)
            return True

    # -- sync ---------------------------------------------------------------------------------------
    def __iter__(self) -> TracedStream:
        return self

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
            if self._self_take(chunk):
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
    def __aiter__(self) -> TracedStream:
        return self

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
            if self._self_take(chunk):
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
