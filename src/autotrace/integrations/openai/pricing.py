"""Built-in OpenAI prices (USD per 1M tokens: input, cached input, output) and cost computation.

Dated model names (``gpt-4o-mini-2024-07-18``, ``gpt-5.1-2025-11-13``) use their base model's
price, except the older snapshots priced differently, listed by their own names. Other names
resolve exactly: a different model sharing a prefix (``gpt-5.1-codex``, ``gpt-5.1-chat-latest``,
``gpt-5.4-pro``) has no price until listed. Azure OpenAI's names for GPT-3.5 (``gpt-35-turbo``,
as its responses give them) are priced as OpenAI's. Unknown models get no cost, only usage.

A response names the service tier that served it (``service_tier``): ``flex`` is billed at half
the standard price (every rate); ``priority``, ``fast`` and ``scale`` are billed at rates not kept
here, so they get no cost; none, ``default`` or ``auto`` is the standard tier. Batch API jobs are
not traced calls. Models in
``_LONG_CONTEXT`` bill a whole request with more than 272K input tokens (cached ones included) at
twice the input, cached-input and cache-write rates and 1.5 times the output rate, as OpenAI's
model pages say; the usage's input count decides it. Models in ``_CACHE_WRITE`` bill the input
tokens written to the cache (usage key ``input_cache_write_tokens``) at their 30-minute cache-write
rate; without that count they are billed as input (12-hour writes are not priced apart).

``set_prices`` adds or overrides prices (a self-hosted or compatible server's models, an Azure
deployment's names), all of a call's or none: per token, as ``(input, cached_input, output)`` or
``{"input", "output"[, "cached_input"][, "cache_write"]}``; per minute of audio,
``{"per_minute": x}`` (``whisper-1``-like); per 1M characters of speech's text,
``{"per_million_characters": x}`` (``tts-1``-like). A model set is billed one way only: its
other prices go, and so do the long-context tier and any cache-write rate it does not give.
``install(prices=...)`` / ``AUTOTRACE_PRICES`` (``config``) give the same mapping as JSON.

A count that is no count (negative, a bool, not finite, past ``MAX_COUNT``: a compatible server's
junk) is priced by nothing: the cost is None, never negative, and computing it never raises.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Mapping
from typing import Any, TypeGuard

_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})$")

#: Sources (checked 2026-12-03): OpenAI's model pages under developers.openai.com/api/docs/models/
#: where stored, else two consistent third-party copies of them; the report that added each lists them.
_PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-6.2-sol": (2.0, 0.10, 10.0),
    "gpt-6.1-sol": (2.0, 0.10, 10.0),
    "gpt-6-sol": (2.0, 0.20, 10.0),
    "gpt-6-astra": (10.0, 1.0, 50.0),
    "gpt-6-luna": (0.10, 0.01, 0.50),
    "gpt-5.6-terra": (2.0, 0.20, 12.0),
    "gpt-5.6-luna": (0.20, 0.02, 1.20),
    "gpt-5.5": (5.0, 0.50, 30.0),
    "gpt-5.5-pro": (30.0, 30.0, 180.0),
    "gpt-5.4": (2.50, 0.25, 15.0),
    "gpt-5.4-mini": (0.75, 0.075, 4.50),
    "gpt-5.4-nano": (0.20, 0.02, 1.25),
    "gpt-5.2": (1.75, 0.175, 14.0),
    "gpt-5.2-pro": (21.0, 21.0, 168.0),
    "gpt-5.1": (1.25, 0.125, 10.0),
    "gpt-5": (1.25, 0.125, 10.0),
    "gpt-5-mini": (0.25, 0.025, 2.0),
    "gpt-5-nano": (0.05, 0.005, 0.40),
    "gpt-4.1": (2.0, 0.50, 8.0),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4.1-nano": (0.10, 0.025, 0.40),
    "gpt-4o": (2.50, 1.25, 10.0),
    "gpt-4o-2024-05-13": (5.0, 5.0, 15.0),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "o1": (15.0, 7.50, 60.0),
    "o3": (2.0, 0.50, 8.0),
    "o3-mini": (1.10, 0.55, 4.40),
    "o4-mini": (1.10, 0.275, 4.40),
    "gpt-4-turbo": (10.0, 10.0, 30.0),
    "gpt-3.5-turbo": (0.50, 0.50, 1.50),
    "gpt-3.5-turbo-1106": (1.0, 1.0, 2.0),
    "gpt-3.5-turbo-0613": (1.50, 1.50, 2.0),
    "gpt-3.5-turbo-instruct": (1.50, 1.50, 2.0),
    "text-embedding-3-small": (0.02, 0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.13, 0.0),
    "text-embedding-ada-002": (0.10, 0.10, 0.0),
}

#: Input tokens past which a ``_LONG_CONTEXT`` model bills the whole request at its long-context rates.
_LONG_CONTEXT_INPUT = 272_000
_LONG_CONTEXT: set[str] = {
    "gpt-6.2-sol", "gpt-6.1-sol", "gpt-6-sol", "gpt-6-astra", "gpt-6-luna", "gpt-5.6-terra", "gpt-5.6-luna",
    "gpt-5.5", "gpt-5.4",
}
#: USD per 1M input tokens written to the cache (30-minute retention), where OpenAI bills writes apart.
_CACHE_WRITE: dict[str, float] = {
    "gpt-6.2-sol": 2.50, "gpt-6.1-sol": 2.50, "gpt-6-sol": 2.50, "gpt-6-astra": 12.50, "gpt-6-luna": 0.125,
    "gpt-5.6-terra": 2.50, "gpt-5.6-luna": 0.25,
}

#: Models priced per token kind (USD per 1M tokens of each usage key), from OpenAI's pricing and
#: model pages: images, whose text and image input are priced apart; speech to text, whose audio
#: and text (prompt) input are; ``gpt-4o-mini-tts``, whose input is text and output audio (its
#: usage, from a ``stream_format="sse"`` reply, gives no split: each side is one kind). Their cost
#: needs every count its price names.
_PRICES_BY_KIND: dict[str, dict[str, float]] = {
    "gpt-image-1": {"input_text_tokens": 5.0, "input_image_tokens": 10.0, "output": 40.0},
    "gpt-image-1-mini": {"input_text_tokens": 2.0, "input_image_tokens": 2.50, "output": 8.0},
    "gpt-4o-transcribe": {"input_text_tokens": 2.50, "input_audio_tokens": 6.0, "output": 10.0},
    "gpt-4o-mini-transcribe": {"input_text_tokens": 1.25, "input_audio_tokens": 3.0, "output": 5.0},
    "gpt-4o-mini-tts": {"input": 0.60, "output": 12.0},
}
#: Models priced per minute of input audio (USD), their usage a duration.
_PRICES_PER_MINUTE: dict[str, float] = {"whisper-1": 0.006}
#: Speech priced per 1M characters of input text (USD): no usage, the request's text is counted.
_PRICES_PER_MILLION_CHARACTERS: dict[str, float] = {"tts-1": 15.0, "tts-1-hd": 30.0}


#: Response model name -> (table key, price), for names seen before (bounded: model names come from servers).
_RESOLVED: dict[str, tuple[str, tuple[float, float, float]] | None] = {}
_MAX_RESOLVED = 512
#: Held by ``set_prices`` and while a resolved name is cached, which only happens if no
#: ``set_prices`` ran since its tables were read (``_generation``): no stale price is cached.
_RESOLVED_LOCK = threading.Lock()
_generation = 0
#: Counts from this on are no real count (nor exact as a float): a usage holding one has no cost.
MAX_COUNT = 2**53


#: A price as ``set_prices`` keeps it: per token ``("tokens", ((input, cached, output), cache_write))``,
#: else ``("per_minute", usd)`` or ``("per_million_characters", usd)``.
_Price = tuple[str, Any]
_TOKEN_KEYS = frozenset({"input", "output", "cached_input", "cache_write"})
_WHOLE_KEYS = ("per_minute", "per_million_characters")


def set_prices(prices: Mapping[str, Any]) -> None:
    """Add or override prices in USD, per model: ``(input, cached_input, output)`` or
    ``{"input": x, "output": y}`` (optional ``"cached_input"``, the input price by default, and
    ``"cache_write"``) per 1M tokens; ``{"per_minute": z}`` of input audio; or
    ``{"per_million_characters": w}`` of speech's input text. A model's price replaces every other
    it had. All of them or, if one is no price (``ValueError`` naming its model), none."""
    global _generation
    if not isinstance(prices, Mapping):
        raise ValueError(f"prices must be a mapping of model names to prices, not a {type(prices).__name__}")
    parsed = [(model, _parsed(model, price)) for model, price in prices.items()]
    with _RESOLVED_LOCK:
        for model, (kind, value) in parsed:
            if kind == "tokens":  # the new price first, then the others go: a reader sees one or the other
                if value[1] is None:
                    _CACHE_WRITE.pop(model, None)
                else:
                    _CACHE_WRITE[model] = value[1]
                _PRICES[model] = value[0]
            else:
                (_PRICES_PER_MINUTE if kind == "per_minute" else _PRICES_PER_MILLION_CHARACTERS)[model] = value
                _PRICES.pop(model, None)
                _CACHE_WRITE.pop(model, None)
            if kind != "per_minute":
                _PRICES_PER_MINUTE.pop(model, None)
            if kind != "per_million_characters":
                _PRICES_PER_MILLION_CHARACTERS.pop(model, None)
            _LONG_CONTEXT.discard(model)  # the caller's price is the whole price
        _generation += 1
        _RESOLVED.clear()


def _parsed(model: Any, price: Any) -> _Price:
    """One model's price as ``set_prices`` keeps it, or ``ValueError`` naming the model."""
    if not isinstance(model, str) or not model:
        raise ValueError(f"a model name must be a non-empty string, not {model!r}")
    if isinstance(price, Mapping):
        keys = set(price)
        for kind in _WHOLE_KEYS:
            if kind in keys:
                if len(keys) > 1:
                    raise ValueError(f"price for {model!r}: {kind!r} is priced alone (one way of billing), "
                                     f"not with {sorted(map(str, keys - {kind}))}")
                return kind, _usd(model, kind, price[kind])
        if keys - _TOKEN_KEYS or not {"input", "output"} <= keys:
            raise ValueError(f"price for {model!r} must have 'input' and 'output' (and optionally 'cached_input', "
                             f"'cache_write'), or be 'per_minute' or 'per_million_characters' alone; "
                             f"got {sorted(map(str, keys))}")
        input_price = _usd(model, "input", price["input"])
        triple = (input_price, _usd(model, "cached_input", price.get("cached_input", input_price)),
                  _usd(model, "output", price["output"]))
        write = _usd(model, "cache_write", price["cache_write"]) if "cache_write" in price else None
        return "tokens", (triple, write)
    try:
        values = () if isinstance(price, str | bytes) else tuple(price)
    except TypeError:
        values = ()
    if len(values) != 3 or not all(_is_usd(value) for value in values):
        raise ValueError(f"price for {model!r} must be (input, cached_input, output) non-negative numbers "
                         f"or a mapping, got {price!r}")
    return "tokens", ((float(values[0]), float(values[1]), float(values[2])), None)


def _is_usd(value: Any) -> bool:
    """Whether a price is one: a finite non-negative number (no bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= sys.float_info.max


def _usd(model: str, key: str, value: Any) -> float:
    if not _is_usd(value):
        raise ValueError(f"price for {model!r}: {key!r} must be a finite non-negative number, got {value!r}")
    return float(value)


def _resolve(model: str) -> tuple[str, tuple[float, float, float]] | None:
    """The table key and price of a model name as a server returned it, or None."""
    try:
        return _RESOLVED[model]
    except KeyError:
        pass
    generation = _generation
    key = model if model in _PRICES else _DATE_SUFFIX.sub("", model)
    found: tuple[str, tuple[float, float, float]] | None = (key, _PRICES[key]) if key in _PRICES else None
    if found is None and model.startswith("gpt-35-"):  # Azure's spelling (a deployment's model, not its name)
        found = _resolve("gpt-3.5-" + model[len("gpt-35-"):])
    with _RESOLVED_LOCK:
        if generation == _generation:  # else prices changed meanwhile: this answer may be stale
            if len(_RESOLVED) >= _MAX_RESOLVED:
                _RESOLVED.clear()
            _RESOLVED[model] = found
    return found


def is_count(value: Any) -> TypeGuard[int]:
    """Whether a usage value is a count: an int (no bool) from 0 to ``MAX_COUNT``. A compatible
    server's other values (negative, ``true``, past any counter) are left out of the usage recorded."""
    return type(value) is int and 0 <= value < MAX_COUNT


_NUMBERS = (int, float)


def _count(value: Any) -> float | None:
    """A count as priced (a float too), or None for one that is none: negative, a bool, a string,
    not finite, from ``MAX_COUNT`` on."""
    return value if type(value) in _NUMBERS and 0 <= value < MAX_COUNT else None


def price_of(model: str | None) -> tuple[float, float, float] | None:
    """The price of a model name as a server returned it: None for an unknown one, and for a name
    that is no string (a compatible server's number, say: it names no priced model)."""
    if not model or not isinstance(model, str):
        return None
    found = _resolve(model)
    return None if found is None else found[1]


#: Service tiers as a response names them -> the share of the standard price they bill.
_TIER_SHARE = {"default": 1.0, "auto": 1.0, "flex": 0.5}


def tier_share(tier: Any) -> float | None:
    """The share of the standard price a response's service tier bills: 1 for none or the standard
    tier, None for a tier priced at rates not kept here (or a name that is no tier)."""
    return 1.0 if tier is None else _TIER_SHARE.get(tier) if type(tier) is str else None


def cost(model: str | None, usage: Mapping[str, Any] | None, tier: Any = None) -> dict[str, float] | None:
    """``{"input", "output", "total"}`` in USD for a known model, at the rates of the service tier
    the response names (``tier_share``), else None."""
    if not usage or not model or not isinstance(model, str):
        return None
    share = 1.0 if tier is None else tier_share(tier)
    if share is None:
        return None
    found = _resolve(model)
    if found is None:
        return None
    key, (input_price, cached_price, output_price) = found
    get = usage.get
    counts = tokens_in, cached, written, tokens_out = (
        get("input") or 0, get("input_cached_tokens") or 0, get("input_cache_write_tokens") or 0, get("output") or 0)
    for value in counts:
        if _count(value) is None:
            return None  # junk: no price fits it
    cached = min(cached, tokens_in)  # a server's count past the input costs no refund
    write_price = _CACHE_WRITE.get(key)
    written = min(written, tokens_in - cached) if write_price is not None else 0
    scale_in = scale_out = share
    if tokens_in > _LONG_CONTEXT_INPUT and key in _LONG_CONTEXT:
        scale_in, scale_out = 2.0 * share, 1.5 * share
    input_cost = scale_in * ((tokens_in - cached - written) * input_price + cached * cached_price
                             + written * (write_price or 0.0)) / 1e6
    output_cost = scale_out * tokens_out * output_price / 1e6
    return {"input": input_cost, "output": output_cost, "total": input_cost + output_cost}


def media_cost(model: Any, usage: Mapping[str, Any] | None, seconds: float | None = None,
               characters: int | None = None) -> dict[str, float] | None:
    """The cost of an audio or image call in USD: per minute of audio (``seconds``), per character
    of speech's input text (``characters``), per token of each kind, or per token as ``cost``
    prices it; None for an unknown model or missing counts. A name priced itself wins over its
    base model (``-2025-03-20`` cut), and ``set_prices`` leaves a model in one of the first three
    tables only: the per-kind prices are the built-in ones, which any other price overrides."""
    if not isinstance(model, str) or not model:
        return None
    key = model
    if not (model in _PRICES_PER_MINUTE or model in _PRICES or model in _PRICES_PER_MILLION_CHARACTERS
            or model in _PRICES_BY_KIND):
        key = _DATE_SUFFIX.sub("", model)
    per_minute = _PRICES_PER_MINUTE.get(key)
    if per_minute is not None:
        if (duration := _count(seconds)) is None:
            return None
        total = duration / 60 * per_minute
        return {"input": total, "output": 0.0, "total": total}
    if key in _PRICES:
        return cost(model, usage)
    per_character = _PRICES_PER_MILLION_CHARACTERS.get(key)
    if per_character is not None:
        if not is_count(characters):
            return None
        total = characters * per_character / 1e6
        return {"input": total, "output": 0.0, "total": total}
    by_kind = _PRICES_BY_KIND.get(key)
    if by_kind is None:
        return cost(model, usage)
    if not usage or not all(is_count(usage.get(kind)) for kind in by_kind):
        return None
    input_cost = sum(usage[kind] * price for kind, price in by_kind.items() if kind.startswith("input")) / 1e6
    output_cost = usage["output"] * by_kind["output"] / 1e6
    return {"input": input_cost, "output": output_cost, "total": input_cost + output_cost}
