"""The parts of OpenAI API payloads the stream tests build their events from."""

from __future__ import annotations

from typing import Any

#: A chat completion chunk's fields besides its choices (and usage).
CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
#: A chat completion's usage.
USAGE = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}


def response(model: str) -> dict[str, Any]:
    """A Responses API response of ``model`` still in progress, with no output yet."""
    return {"id": "resp_1", "object": "response", "created_at": 1, "model": model, "status": "in_progress",
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "output": [], "usage": None}
