"""Token usage of a LlamaIndex LLM's response, read under the names each provider gives it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: (a usage's details field, its count, the Langfuse usage key): OpenAI chat's, then Responses'
_DETAILS = (("prompt_tokens_details", "cached_tokens", "input_cached_tokens"),
            ("completion_tokens_details", "reasoning_tokens", "output_reasoning_tokens"),
            ("input_tokens_details", "cached_tokens", "input_cached_tokens"),
            ("output_tokens_details", "reasoning_tokens", "output_reasoning_tokens"))
#: Anthropic's cache reads and writes (not counted in its ``input_tokens``) as Langfuse usage keys
_CACHE = (("cache_read_input_tokens", "input_cached_tokens"), ("cache_creation_input_tokens", "input_cache_write_tokens"))
#: a usage's names: (input, output, total, its details, its cache counts, whether its input leaves them
#: out): OpenAI chat's (whose ``prompt_tokens`` count them: LiteLLM's also name Anthropic's, the same
#: tokens), Anthropic's and OpenAI Responses', Bedrock Converse's
_NAMINGS = (("prompt_tokens", "completion_tokens", "total_tokens", _DETAILS[:2], _CACHE, False),
            ("input_tokens", "output_tokens", "total_tokens", _DETAILS[2:], _CACHE, True),
            ("inputTokens", "outputTokens", "totalTokens", (),
             (("cacheReadInputTokens", "input_cached_tokens"), ("cacheWriteInputTokens", "input_cache_write_tokens")),
             True))


def _reader(value: Any) -> Callable[[str], Any]:
    """A reader of a dict's keys, or an object's attributes (a pydantic model's fields and extras
    read where they are held: a name it lacks takes it microseconds to refuse)."""
    if isinstance(value, dict):
        return value.get
    fields, extra = getattr(value, "__dict__", None), getattr(value, "__pydantic_extra__", None)
    if isinstance(fields, dict) and getattr(value, "__pydantic_fields_set__", None) is not None:
        return lambda key: fields[key] if key in fields else extra.get(key) if isinstance(extra, dict) else None
    return lambda key: getattr(value, key, None)


def usage(result: Any) -> dict[str, int] | None:
    """Token usage of an LLM's response: its ``raw`` (an object or dict) reply's ``usage`` (OpenAI,
    Anthropic, Bedrock Converse names) or ``usage_metadata`` (Gemini's), else the counts LlamaIndex's
    LLMs copy to the response's ``additional_kwargs`` (Ollama's ...), or to its message's (a
    ``CustomLLM``'s chat, from its completion's)."""
    raw = getattr(result, "raw", None)
    if raw is not None:
        read = _reader(raw)
        found = read("usage")
        recorded = _usage_of(found) if found is not None else None
        if recorded is None and (found := read("usage_metadata")) is not None:
            recorded = _gemini_usage(_reader(found))
        if recorded is not None:
            return recorded
    for holder in (result, _reader(result)("message")):  # LlamaIndex's responses and messages all have them
        extra = getattr(holder, "additional_kwargs", None)
        if isinstance(extra, dict) and extra and (recorded := _usage_of(extra)) is not None:
            return recorded
    return None


def _usage_of(found: Any) -> dict[str, int] | None:
    """A usage read by its names (``_NAMINGS``), with the cached and reasoning tokens among them."""
    read = _reader(found)
    naming = next((n for n in _NAMINGS if type(read(n[0])) is int and type(read(n[1])) is int), None)
    if naming is None:
        return None
    _, _, total_name, details, cache, apart = naming
    counts = read(naming[0]), read(naming[1])
    if counts == (0, 0) and not read(total_name):  # a reply that reported none (LlamaIndex's default counts)
        return None
    recorded = {"input": counts[0], "output": counts[1]}
    for field, key, name in details:
        if (inner := read(field)) is not None and type(value := _reader(inner)(key)) is int:
            recorded[name] = value
    for field, name in cache:  # Anthropic's and Bedrock's added to the input, which counts every token here
        if type(value := read(field)) is int:
            recorded[name] = value
            recorded["input"] += value if apart else 0
    total = read(total_name)
    recorded["total"] = total if type(total) is int else recorded["input"] + recorded["output"]
    return recorded


def _gemini_usage(read: Callable[[str], Any]) -> dict[str, int] | None:
    """Gemini's usage: its prompt's tokens (its cached ones among them), and its answer's with its
    thoughts' (which Gemini counts apart)."""
    prompt, answer = read("prompt_token_count"), read("candidates_token_count")
    if type(prompt) is not int:
        return None
    thoughts = read("thoughts_token_count")
    thoughts = thoughts if type(thoughts) is int else 0
    recorded = {"input": prompt, "output": (answer if type(answer) is int else 0) + thoughts}
    if type(cached := read("cached_content_token_count")) is int:
        recorded["input_cached_tokens"] = cached
    if thoughts:
        recorded["output_reasoning_tokens"] = thoughts
    total = read("total_token_count")
    recorded["total"] = total if type(total) is int else recorded["input"] + recorded["output"]
    return recorded
