"""The ONE place that turns typed observation fields into span attributes, and span attributes back
into observation records (for the local store and the CLI).

Attribute names follow the Langfuse OTel contract plus a minimal ``gen_ai.*`` set so any OTLP
backend shows useful data.
"""

from __future__ import annotations

import datetime as _dt
import json
import numbers
import re
from collections.abc import Mapping
from typing import Any

from ._internal import count
from ._serialize import as_text, dumps, serialize_io
from ._serialize import strict_json as strict_json  # re-exported: serialisation is reached through schema
from .bounds import SCALARS, cut_units, cut_value, has_long_string, hold_value

# -- attribute keys -------------------------------------------------------------------------------
OBS_TYPE = "langfuse.observation.type"
OBS_INPUT = "langfuse.observation.input"
OBS_OUTPUT = "langfuse.observation.output"
OBS_LEVEL = "langfuse.observation.level"
OBS_STATUS = "langfuse.observation.status_message"
OBS_MODEL = "langfuse.observation.model.name"
OBS_MODEL_PARAMS = "langfuse.observation.model.parameters"
OBS_USAGE = "langfuse.observation.usage_details"
OBS_COST = "langfuse.observation.cost_details"
OBS_COMPLETION_START = "langfuse.observation.completion_start_time"
OBS_PROMPT_NAME = "langfuse.observation.prompt.name"
OBS_PROMPT_VERSION = "langfuse.observation.prompt.version"
OBS_METADATA = "langfuse.observation.metadata"
#: A prompt named without a version Langfuse takes: kept as metadata (Langfuse refuses a
#: generation with a prompt name and no version).
PROMPT_NAME_ONLY = f"{OBS_METADATA}.prompt_name"
TRACE_NAME = "langfuse.trace.name"
TRACE_USER = "user.id"
TRACE_SESSION = "session.id"
TRACE_TAGS = "langfuse.trace.tags"
TRACE_METADATA = "langfuse.trace.metadata"
ENVIRONMENT = "langfuse.environment"
RELEASE = "langfuse.release"
VERSION = "langfuse.version"
TENANT = "autotrace.tenant"
REPLAY_OF = "autotrace.replay_of"
#: Which of the input and output (``"input"``, ``"output"``, ``"input output"``) was a ``str`` whose text may
#: read as JSON: the local store keeps it as that text, never decoded (a tool that returned ``"48213"`` replays
#: it so). Set only then, on the pipeline thread (``TEXT_FIELDS``); for the local store alone (the Langfuse sink
#: leaves it out). A span of an observation made without ``install()`` (no local store) is never marked.
TEXT_IO = "autotrace.text_io"
#: Field key under which the fields handed to the pipeline thread (all content as text, ``_ended.plain_fields``)
#: name the content fields given as a ``str`` whose first character is in ``JSON_FIRST``, space-separated.
TEXT_FIELDS = "__text_fields__"
#: The characters JSON text may start with (``json.loads`` skips the spaces first).
JSON_FIRST = frozenset('-0123456789[{"tfnNI \t\n\r')

GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_PROVIDER = "gen_ai.provider.name"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"

MAX_ATTRIBUTES = 128
DEFAULT_MAX_VALUE_BYTES = 64 * 1024
#: The longest trace name Langfuse takes (its ingestion schema, in a JavaScript string's length:
#: UTF-16 code units): it refuses the record of a trace named longer, and with it the trace's
#: user, session, tags and metadata.
MAX_TRACE_NAME = 1000
#: Trace and observation fields Langfuse takes as text only (it refuses the record of a trace or
#: observation with a number there): any other value set through the OTel API is sent as its text.
_TEXT_KEYS = (TRACE_NAME, RELEASE, VERSION)

_OPERATION_BY_TYPE = {
    "generation": "chat",
    "embedding": "embeddings",
    "tool": "execute_tool",
    "agent": "invoke_agent",
    "retriever": "retrieval",
}
#: Typed fields recorded as ``langfuse.observation.metadata.<field>``.
_METADATA_FIELDS = (
    "finish_reason", "provider", "input_count", "dimensions", "top_k", "doc_count", "store",
    "collection", "filter", "scores", "operation", "tool_name", "passed", "modified", "reason",
)


_iso_second: tuple[int, str] = (-1, "")


#: Below these, a time given as a number counts seconds (``time.time()``), milliseconds or
#: microseconds since 1970, not nanoseconds: as nanoseconds, it would be a time in 1970.
_NUMBER_UNITS = ((1e11, 10**9), (1e14, 10**6), (1e17, 10**3))
_NANOSECONDS_FROM = 10**17  # an integer from here on counts nanoseconds
_PLAIN_USAGE = frozenset({"input", "output", "total"})  # usage keys that are no details (``_net_of_details``)


def iso_time(ns: int | float | str | _dt.datetime) -> str:
    """UTC ISO 8601 with microseconds; the date and time of day are formatted once per second. A
    datetime (or ISO 8601 text) always gets its offset (a naive one is local time, as the Langfuse
    SDK takes it): Langfuse refuses a generation whose completion start time has none. A number
    counts nanoseconds since 1970, or seconds, milliseconds or microseconds when too small for any
    time since 1973 in nanoseconds (``_NUMBER_UNITS``); ValueError for a bool or a number not above 0."""
    global _iso_second
    if type(ns) is not int or ns < _NANOSECONDS_FROM:  # else the usual ``time.time_ns()``: no test below
        if isinstance(ns, str):
            ns = _dt.datetime.fromisoformat(ns)
        if isinstance(ns, _dt.datetime):
            return ns.astimezone(_dt.UTC).isoformat(timespec="microseconds")
        if isinstance(ns, bool) or not ns > 0:  # a flag, an unset 0, a negative or NaN: no time (as ``otlp_encode._time``)
            raise ValueError(f"not a time since 1970: {ns!r}")
        for below, scale in _NUMBER_UNITS:
            if abs(ns) < below:  # whole units and their fraction apart: a float's product is inexact
                whole = int(ns)
                ns = whole * scale + round((ns - whole) * scale)
                break
    seconds, fraction = divmod(int(ns), 1_000_000_000)
    cached = _iso_second
    if cached[0] != seconds:
        cached = _iso_second = (seconds, _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{cached[1]}.{fraction // 1000:06d}+00:00"


def _prompt_parts(prompt: Any) -> tuple[str | None, int | None]:
    if isinstance(prompt, Mapping):
        return prompt.get("name"), prompt.get("version")
    if isinstance(prompt, tuple) and len(prompt) == 2:
        return prompt[0], prompt[1]
    if isinstance(prompt, str):
        return prompt, None
    if getattr(prompt, "is_fallback", False):  # a Langfuse prompt client that fell back locally
        return None, None
    return getattr(prompt, "name", None), getattr(prompt, "version", None)


def _integer(value: Any, integral_floats: bool = False) -> int | None:
    """``value`` as a 64-bit integer: an integer (not a bool), a string of at most 18 digits, or
    with ``integral_floats`` a float without a fraction; None for anything else."""
    if isinstance(value, str) and 0 < len(value) <= 18 and value.isdecimal():
        return int(value)
    if integral_floats and isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63:
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):  # numpy's integers
        number = int(value)
        return number if abs(number) < 2**63 else None
    return None


def _prompt_version(version: Any) -> int | None:
    """A prompt version as Langfuse takes it, a positive 64-bit integer (``3`` or ``"3"``: Langfuse
    numbers them from 1, and takes 0 for none); None for any other (a label such as ``"latest"``
    is not a version)."""
    number = _integer(version)
    return number if number is not None and number > 0 else None


def _usage_dict(usage: Any) -> dict[str, Any]:
    """``usage`` as token counts: 64-bit integers from 0 kept, a count written as a string of digits (or an
    integral float) read as one, None values and anything else (a negative count: Langfuse refuses
    the whole observation for one) left out (counted as ``usage_values_invalid``); read only: a
    dict of such integers alone is returned as it is."""
    if type(usage) is dict and all(type(v) is int and 0 <= v < 2**63 for v in usage.values()):
        return usage
    counts: dict[str, Any] = {}
    try:
        items = list(usage.items()) if isinstance(usage, Mapping) else None
    except Exception:  # the application's mapping failed to be read: no usage, the rest kept
        items = None
    if items is None:  # not token counts by name (an SDK's usage object: give ``usage=`` a dict)
        count("usage_values_invalid")
        return counts
    for key, value in items:
        number = _integer(value, integral_floats=True)
        if number is not None and number >= 0:
            counts[key] = number
        elif value is not None:
            count("usage_values_invalid")
    return counts


def _net_of_details(usage: dict[str, Any]) -> dict[str, Any]:
    """Usage as Langfuse counts it: autotrace's ``input`` and ``output`` count every token, as
    OpenAI's usage does, their details (``input_cached_tokens``, ``output_reasoning_tokens``...)
    among them; Langfuse adds every ``input*`` type up for a generation's input (and prices each
    one), so ``input`` and ``output`` go without their details (never below 0). ``total`` stays."""
    if _PLAIN_USAGE.issuperset(usage):  # no details (one test in C)
        return usage
    wire = usage
    for side in ("input", "output"):
        given = usage.get(side)
        if type(given) is int:
            details = sum(v for k, v in usage.items() if k.startswith(side + "_") and type(v) is int)
            if details:
                wire = dict(wire) if wire is usage else wire
                wire[side] = max(given - details, 0)
    return wire


def _cost_dict(cost: Any) -> dict[str, Any]:
    """``cost`` as Langfuse takes cost details, amounts from 0 by name (a number alone is the total):
    an amount given as text or as another kind of number (a ``Decimal``) read as a float; a float
    that is not finite, and anything else Langfuse would refuse the whole observation for (a
    negative amount, a bool, a structure, text that is no number), null: no amount (the latter
    counted as ``cost_values_invalid``)."""
    if type(cost) is float and cost >= 0:  # the usual forms, returned at once
        return {"total": cost}
    if type(cost) is dict and all(type(v) is float and v >= 0 for v in cost.values()):
        return cost
    try:
        items = list(cost.items()) if isinstance(cost, Mapping) else [("total", cost)]
    except Exception:  # the application's mapping failed to be read: no amount
        count("cost_values_invalid")
        return {"total": None}
    amounts: dict[str, Any] = {}
    for key, value in items:
        if type(value) is not int and type(value) is not float and isinstance(value, str | numbers.Number) \
                and not isinstance(value, bool):
            try:
                value = float(value)
            except (TypeError, ValueError, OverflowError):
                pass
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool) and not value < 0):
            amounts[key] = value
        else:
            count("cost_values_invalid")
            amounts[key] = None
    return amounts


# -- fields -> attributes -------------------------------------------------------------------------
#: The fields an observation type's input and output come from when ``input`` / ``output`` are not set.
_IO_KEYS = {"retriever": ("query", "documents"), "tool": ("arguments", "result")}
#: A text that may read as JSON (``json.loads`` skips these spaces): a number, array, object, string or
#: literal; only such a ``str`` input or output is marked ``TEXT_IO`` (a false match only marks needlessly).
_JSONISH = re.compile(r'[ \t\n\r]*(?:[-0-9\[{"]|(?:true|false|null|NaN|Infinity)[ \t\n\r]*\Z)')
_METADATA_KEYS = {key: f"{OBS_METADATA}.{key}" for key in _METADATA_FIELDS}


def observation_attributes(obs_type: str, fields: Mapping[str, Any], max_value_bytes: int) -> dict[str, Any]:
    """Turn an observation's typed fields into span attributes (Langfuse keys + ``gen_ai.*``),
    each value bounded by ``hold`` (cut at ``max_value_bytes`` once redacted)."""
    attrs: dict[str, Any] = {OBS_TYPE: obs_type}
    get = fields.get
    input_key, output_key = _IO_KEYS.get(obs_type, ("input", "output"))
    if (input_value := get("input")) is not None:
        input_key = "input"
    else:
        input_value = get(input_key)
    if (output_value := get("output")) is not None:
        output_key = "output"
    else:
        output_value = get(output_key)
    if input_value is not None:
        attrs[OBS_INPUT] = serialize_io(input_value)
    if output_value is not None:
        attrs[OBS_OUTPUT] = serialize_io(output_value)
    if (texts := get(TEXT_FIELDS)) is not None and (marked := _text_io(texts.split(), (input_key, input_value),
                                                                     (output_key, output_value))):
        attrs[TEXT_IO] = marked
    if (level := get("level")) is not None:
        attrs[OBS_LEVEL] = str(level)
    if (status := get("status_message")) is not None:
        attrs[OBS_STATUS] = as_text(status)
    if (version := get("version")) is not None:
        attrs[VERSION] = as_text(version)

    model = get("model")
    response_model = get("response_model")
    if model is not None:
        attrs[GEN_AI_REQUEST_MODEL] = as_text(model)
    if response_model is not None:
        attrs[GEN_AI_RESPONSE_MODEL] = as_text(response_model)
    if model is not None or response_model is not None:
        attrs[OBS_MODEL] = as_text(response_model or model)
    if (params := get("model_parameters")) is not None:
        attrs[OBS_MODEL_PARAMS] = dumps(params)
    if (usage := get("usage")) is not None and (usage := _usage_dict(usage)):  # no counts: no usage
        attrs[OBS_USAGE] = dumps(_net_of_details(usage))
        if isinstance(usage.get("input"), int):
            attrs[GEN_AI_INPUT_TOKENS] = usage["input"]
        if isinstance(usage.get("output"), int):
            attrs[GEN_AI_OUTPUT_TOKENS] = usage["output"]
    if (cost := get("cost")) is not None:
        attrs[OBS_COST] = dumps(_cost_dict(cost))
    if (first_token := get("completion_start_time")) is not None:
        try:
            attrs[OBS_COMPLETION_START] = f'"{iso_time(first_token)}"'  # an ISO timestamp needs no escaping
        except (TypeError, ValueError, OverflowError, OSError):  # not a time: left out, the rest kept
            count("completion_start_time_invalid")
    if (prompt := get("prompt")) is not None:
        try:
            prompt_name, prompt_version = _prompt_parts(prompt)
        except Exception:  # a prompt object whose attributes raise: no prompt, the rest kept
            prompt_name = prompt_version = None
            count("prompt_versions_invalid")
        version = _prompt_version(prompt_version)
        if version is None and prompt_version is not None:
            count("prompt_versions_invalid")
        if prompt_name is not None and version is not None:
            attrs[OBS_PROMPT_NAME] = as_text(prompt_name)
            attrs[OBS_PROMPT_VERSION] = version
        elif prompt_name is not None:  # Langfuse refuses a generation naming a prompt without its version
            attrs[PROMPT_NAME_ONLY] = metadata_value(as_text(prompt_name))
    operation = get("operation") if obs_type in ("generation", "embedding") else None
    if (op := operation or _OPERATION_BY_TYPE.get(obs_type)) is not None:
        attrs[GEN_AI_OPERATION] = op
    if (provider := get("provider")) is not None:
        attrs[GEN_AI_PROVIDER] = as_text(provider)
    if (tool_name := get("tool_name")) is not None:
        attrs[GEN_AI_TOOL_NAME] = as_text(tool_name)

    for key, value in fields.items():  # the typed metadata fields this observation has
        if value is not None and key in _METADATA_KEYS:
            attrs[_METADATA_KEYS[key]] = metadata_value(value)
    metadata = get("metadata")
    if type(metadata) is dict or isinstance(metadata, Mapping):
        room = MAX_ATTRIBUTES - 16 - len(attrs)  # leave room for trace-level and third-party keys
        for key, value in metadata.items():
            if value is None:
                continue
            if room <= 0:
                count("attributes_dropped")
                continue
            attrs[f"{OBS_METADATA}.{key if type(key) is str else as_text(key)}"] = metadata_value(value)
            room -= 1
    # every value bounded, whichever field it came from: the span takes them as they are
    return cap_attributes(attrs, max_value_bytes)


def _text_io(texts: list[str], given: tuple[str, Any], made: tuple[str, Any]) -> str | None:
    """``TEXT_IO``'s value: which of the input (``given``) and output (``made``), each (its field, its text), is
    one of the ``texts`` (given as a ``str``) that may read as JSON; None for neither."""
    marked = [side for side, (key, value) in (("input", given), ("output", made))
              if key in texts and isinstance(value, str) and _JSONISH.match(value)]
    return " ".join(marked) or None


def metadata_value(value: Any) -> str:
    """Metadata values are JSON-encoded, strings included, as the Langfuse v5 SDK sends them."""
    return dumps(value, compact=True)


def trace_attributes(
    *,
    name: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    metadata: Mapping[str, Any] | None = None,
    release: str | None = None,
    environment: str | None = None,
) -> dict[str, Any]:
    """Trace-level attributes (Langfuse copies them onto the trace from any span carrying them)."""
    attrs: dict[str, Any] = {}
    if name is not None:
        attrs[TRACE_NAME] = as_text(name)
    if user_id is not None:
        attrs[TRACE_USER] = as_text(user_id)
    if session_id is not None:
        attrs[TRACE_SESSION] = as_text(session_id)
    if tags:
        attrs[TRACE_TAGS] = [as_text(tag) for tag in tags]
    if metadata:
        for key, value in metadata.items():
            if value is not None:
                attrs[f"{TRACE_METADATA}.{key if type(key) is str else as_text(key)}"] = metadata_value(value)
    if release is not None:
        attrs[RELEASE] = as_text(release)
    if environment is not None:
        attrs[ENVIRONMENT] = environment
    return attrs


#: Keys autotrace itself sets on every span: never the ones dropped to keep under the cap.
_OWN_KEYS = (OBS_TYPE, TENANT, ENVIRONMENT, RELEASE)


def cap_attributes(attrs: dict[str, Any], max_value_bytes: int, values_capped: bool = False) -> dict[str, Any]:
    """Bound a span's attributes before redaction: each value to what ``hold_value`` keeps (unless
    ``values_capped``), and their number to the 128-attribute cap, dropping others' keys rather
    than autotrace's own (counted). ``cut_values`` cuts the values at the limit once redacted."""
    if not values_capped and has_long_string(attrs.values(), max_value_bytes):
        for key, value in attrs.items():
            if not isinstance(value, SCALARS):
                attrs[key] = hold_value(value, max_value_bytes)
    if len(attrs) > MAX_ATTRIBUTES:
        count("attributes_dropped", len(attrs) - MAX_ATTRIBUTES)
        kept = {key: attrs[key] for key in _OWN_KEYS if key in attrs}
        for key, value in attrs.items():
            if len(kept) >= MAX_ATTRIBUTES:
                break
            kept.setdefault(key, value)
        attrs = kept
    return attrs


def cut_values(attrs: dict[str, Any], max_value_bytes: int, root_name: str | None = None) -> None:
    """Cut every value of ``attrs`` (redacted by now) at the value size limit, in place (``cut_value``),
    and the trace name at Langfuse's (``MAX_TRACE_NAME``): the one set, else for a root span (whose
    name is ``root_name``) what Langfuse names the trace after, its tool name or its name, set as
    the trace's name when too long (the observation keeps it whole; counted as ``trace_names_truncated``)."""
    if has_long_string(attrs.values(), max_value_bytes):
        for key, value in attrs.items():
            if not isinstance(value, SCALARS):
                attrs[key] = cut_value(value, max_value_bytes)
    for key in _TEXT_KEYS:
        value = attrs.get(key)
        if value is not None and type(value) is not str:
            attrs[key] = as_text(value)
    name = attrs.get(TRACE_NAME)
    if name is None and root_name is not None:
        name = attrs.get(GEN_AI_TOOL_NAME) or root_name
    if type(name) is str and len(name) > MAX_TRACE_NAME // 2:  # below that, within the limit in any case
        cut = cut_units(name, MAX_TRACE_NAME)
        if cut is not name:
            attrs[TRACE_NAME] = cut
            count("trace_names_truncated")


# -- attributes -> observation record ------------------------------------------------------------
def _loads(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _content(attrs: Mapping[str, Any], key: str, side: str) -> Any:
    """The input or output of a span: decoded from its JSON text, unless ``TEXT_IO`` says it was that text."""
    value = attrs.get(key)
    marked = attrs.get(TEXT_IO)
    return value if type(marked) is str and side in marked.split() else _loads(value)


def infer_type(attrs: Mapping[str, Any]) -> str:
    """The observation type of any span, third-party ones included."""
    explicit = attrs.get(OBS_TYPE)
    if explicit:
        return str(explicit)
    operation = attrs.get(GEN_AI_OPERATION)
    if operation in ("chat", "text_completion", "generate_content"):
        return "generation"
    if operation == "embeddings":
        return "embedding"
    if operation == "execute_tool":
        return "tool"
    if operation == "invoke_agent":
        return "agent"
    return "span"


def observation_record(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The typed fields of a finished span, decoded from its attributes (local store and CLI)."""
    metadata: dict[str, Any] = {}
    trace_metadata: dict[str, Any] = {}
    prefix = OBS_METADATA + "."
    trace_prefix = TRACE_METADATA + "."
    for key, value in attrs.items():
        if key.startswith(prefix):
            metadata[key[len(prefix):]] = _loads(value)
        elif key.startswith(trace_prefix):
            trace_metadata[key[len(trace_prefix):]] = _loads(value)
    usage = _loads(attrs.get(OBS_USAGE))
    if usage is None and (GEN_AI_INPUT_TOKENS in attrs or GEN_AI_OUTPUT_TOKENS in attrs):
        usage = _usage_dict({"input": attrs.get(GEN_AI_INPUT_TOKENS, 0), "output": attrs.get(GEN_AI_OUTPUT_TOKENS, 0)})
    elif isinstance(usage, dict):  # every token again, details included (``_net_of_details``)
        for side, key in (("input", GEN_AI_INPUT_TOKENS), ("output", GEN_AI_OUTPUT_TOKENS)):
            if side in usage and type(attrs.get(key)) is int:
                usage[side] = attrs[key]
    if isinstance(usage, dict) and "total" not in usage and ("input" in usage or "output" in usage):
        usage["total"] = sum(v for k in ("input", "output") if isinstance(v := usage.get(k), int | float))
    prompt_name = attrs.get(OBS_PROMPT_NAME)
    if prompt_name is None and isinstance(metadata.get("prompt_name"), str):  # named without a version
        prompt_name = metadata["prompt_name"]
    return {
        "type": infer_type(attrs),
        "tenant": attrs.get(TENANT),
        "level": attrs.get(OBS_LEVEL, "DEFAULT"),
        "status_message": attrs.get(OBS_STATUS),
        "model": attrs.get(OBS_MODEL) or attrs.get(GEN_AI_RESPONSE_MODEL) or attrs.get(GEN_AI_REQUEST_MODEL),
        "input": _content(attrs, OBS_INPUT, "input"),
        "output": _content(attrs, OBS_OUTPUT, "output"),
        "usage": usage,
        "cost": _loads(attrs.get(OBS_COST)),
        "model_parameters": _loads(attrs.get(OBS_MODEL_PARAMS)),
        "completion_start_time": _loads(attrs.get(OBS_COMPLETION_START)),
        "prompt": {"name": prompt_name, "version": attrs.get(OBS_PROMPT_VERSION)} if prompt_name else None,
        "metadata": metadata,
        "doc_count": metadata.get("doc_count"),
        "top_k": metadata.get("top_k"),
        "trace_name": attrs.get(TRACE_NAME),
        "user_id": attrs.get(TRACE_USER),
        "session_id": attrs.get(TRACE_SESSION),
        "tags": list(attrs.get(TRACE_TAGS) or ()),
        "trace_metadata": trace_metadata,
        "replay_of": attrs.get(REPLAY_OF),
    }
