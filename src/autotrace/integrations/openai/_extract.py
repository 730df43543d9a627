"""Request and response extraction for OpenAI calls: cheap attribute reads only (serialisation
happens later, on the export thread)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from ...observation import ObservationType
from ..documents import document, recorded
from ..media import media_note, without_data_urls, without_media
from . import _media, pricing

#: Request keys recorded as model parameters.
_PARAMETERS = frozenset({
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "max_output_tokens", "n", "stop", "seed",
    "presence_penalty", "frequency_penalty", "response_format", "tool_choice", "reasoning_effort", "stream",
    "parallel_tool_calls", "function_call", "logprobs", "top_logprobs", "service_tier", "dimensions", "encoding_format",
    # the Responses API's: ``reasoning`` ({"effort": ...}), ``text`` ({"format": ..., "verbosity": ...})
    "verbosity", "reasoning", "text", "truncation", "max_tool_calls", "background",
})
#: Operations whose responses name the service tier that served them (``pricing.tier_share``).
_TIERED = frozenset({"chat", "responses"})
#: Responses API request keys that say where the conversation before ``input`` is kept: recorded
#: with the input, as ``instructions`` are, for the input alone is not what the model was given
#: (a stored ``prompt``: its id, version and variables, the whole input of a call that sends none).
_CONTEXT = ("prompt", "instructions", "previous_response_id", "conversation")
#: Responses API output items that are calls for the program (or a person) to act on.
_CALL_ITEMS = frozenset({"function_call", "custom_tool_call", "computer_call", "local_shell_call", "shell_call",
                         "apply_patch_call", "mcp_approval_request"})
#: ... and the items that show a tool at work: those, and the calls hosted tools made for the model
#: (their queries, results, arguments, errors).
_TOOL_ITEMS = _CALL_ITEMS | {"file_search_call", "web_search_call", "code_interpreter_call", "mcp_call",
                             "mcp_list_tools", "image_generation_call"}

#: ``client.decisions``: a model answers questions about an input (a predicate's probability, a
#: choice, a score), billed by tokens; recorded with the questions as part of its input.
DECISION = "decision"
#: url path suffix -> (operation, observation name, observation type); scanned in order, so the
#: hot paths (chat, embeddings) come first, then audio and images (``_media``) and decisions, and
#: moderations last.
ENDPOINTS = {
    "/chat/completions": ("chat", "openai.chat", ObservationType.GENERATION),
    "/responses": ("responses", "openai.responses", ObservationType.GENERATION),
    "/completions": ("text_completion", "openai.completions", ObservationType.GENERATION),
    "/embeddings": ("embeddings", "openai.embeddings", ObservationType.EMBEDDING),
    # a model's pass over a conversation (``responses.compact``), with usage: a Responses call
    "/responses/compact": ("responses", "openai.responses.compact", ObservationType.GENERATION),
    "/audio/transcriptions": (_media.TRANSCRIPTION, "openai.audio.transcriptions", ObservationType.GENERATION),
    "/audio/translations": (_media.TRANSLATION, "openai.audio.translations", ObservationType.GENERATION),
    "/audio/speech": (_media.SPEECH, "openai.audio.speech", ObservationType.GENERATION),
    "/images/generations": (_media.IMAGE_GENERATION, "openai.images.generate", ObservationType.GENERATION),
    "/images/edits": (_media.IMAGE_EDIT, "openai.images.edit", ObservationType.GENERATION),
    "/images/variations": (_media.IMAGE_VARIATION, "openai.images.create_variation", ObservationType.GENERATION),
    "/decisions": (DECISION, "openai.decisions", ObservationType.GENERATION),
    "/moderations": ("moderation", "openai.moderations", ObservationType.GUARDRAIL),
}


#: ``POST /vector_stores/{id}/search`` (``vector_stores.search``): a search of a hosted vector store.
VECTOR_STORE_SEARCH = "vector_store_search"
_SEARCH_ENDPOINT = (VECTOR_STORE_SEARCH, "openai.vector_stores.search", ObservationType.RETRIEVER)
#: The API's number of results when a search names none (``max_num_results``).
_SEARCH_DEFAULT_RESULTS = 10


def endpoint(url: str) -> tuple[str, str, ObservationType] | None:
    """The operation, name and observation type for a request path (Azure deployment paths included;
    a query the SDK puts in the path, as ``client.beta.responses``' ``/responses?beta=true``, aside)."""
    if "?" in url:
        url = url.partition("?")[0]
    for suffix, found in ENDPOINTS.items():
        if url.endswith(suffix):
            return found
    if url.endswith("/search") and "/vector_stores/" in url:
        return _SEARCH_ENDPOINT
    return None


def request_fields(operation: str, body: dict[str, Any], options: Any = None) -> dict[str, Any]:
    """Typed fields from the request body (and, for an upload, the request ``options``' files)."""
    fields: dict[str, Any] = {"model": body.get("model"), "operation": operation}
    params = {key: value for key, value in body.items() if key in _PARAMETERS}  # in the caller's order
    tools = body.get("tools") or body.get("functions")  # ``functions``: chat's deprecated tools
    if tools:
        params["tools"] = [_tool_name(tool) for tool in tools]
    if params:
        fields["model_parameters"] = params
    if operation == "chat":
        fields["input"] = without_media(body.get("messages"))
    elif operation == "embeddings":
        value = body.get("input")
        fields["input"] = value
        fields["input_count"] = input_count(value)
    elif operation == "responses":
        value = without_media(body.get("input"))
        context = {key: body[key] for key in _CONTEXT if body.get(key)}
        if "prompt" in context:
            context["prompt"] = _prompt_without_media(context["prompt"])
        if "instructions" in context:  # a text, or a list of input items
            context["instructions"] = without_media(context["instructions"])
        fields["input"] = {**context, "input": value} if context else value
    elif operation == "text_completion":
        fields["input"] = body.get("prompt")
    elif operation == "moderation":  # last, so that chat and embeddings test for nothing more
        fields.update(_moderation_input(body.get("input")))
    elif operation == VECTOR_STORE_SEARCH:
        return _search_request(body, getattr(options, "url", ""))
    elif operation == DECISION:
        fields["input"] = {"questions": body.get("questions"), "input": without_media(body.get("input"))}
    else:
        return _media.request_fields(operation, body, options)
    return fields


def input_count(value: Any) -> int:
    """How many inputs an embeddings ``input`` or a legacy completion's ``prompt`` holds: a list of
    token ids is one input; a list of texts (or of token lists) is several."""
    return len(value) if isinstance(value, list) and not (value and type(value[0]) is int) else 1


def _prompt_without_media(prompt: Any) -> Any:
    """A stored prompt's reference with the inline payloads of its variables (an ``input_image``'s
    data URL, an ``input_file``'s data) noted as a message's are; text variables kept."""
    variables = prompt.get("variables") if type(prompt) is dict else None
    if type(variables) is not dict or not any(type(value) is dict for value in variables.values()):
        return prompt
    parts = without_media([{"content": list(variables.values())}])[0]["content"]
    return {**prompt, "variables": dict(zip(variables, parts, strict=True))}


def _search_request(body: dict[str, Any], url: str) -> dict[str, Any]:
    """A vector store search's query (a text or several), the store (its id, from ``url``), the
    number of results asked for (the API's default when none), its filter, and its ranking and
    query-rewriting options as metadata."""
    fields: dict[str, Any] = {"operation": VECTOR_STORE_SEARCH, "store": "openai",
                              "collection": url.rsplit("/", 2)[-2] if url.count("/") >= 2 else None,
                              "query": body.get("query"), "filter": body.get("filters"),
                              "top_k": body.get("max_num_results", _SEARCH_DEFAULT_RESULTS)}
    options = {key: body[key] for key in ("ranking_options", "rewrite_query") if body.get(key) is not None}
    if options:
        fields["metadata"] = options
    return fields


def _search_results(page: Any, options: Any) -> dict[str, Any]:
    """A vector store search's results as documents (file id, score, the start of its text, the
    file's name and attributes), and the query the search ran when the API rewrote it."""
    data = getattr(page, "data", None)
    data = data if isinstance(data, list) else []
    found = (document(getattr(item, "file_id", None), getattr(item, "score", None), _search_text(item),
                      _search_metadata(item)) for item in data)
    documents, metadata = recorded(found, len(data))
    fields: dict[str, Any] = {"documents": documents, "doc_count": len(data)}
    ran = getattr(page, "search_query", None)
    asked = (getattr(options, "json_data", None) or {}).get("query")
    if ran and ran != asked and ran != [asked]:
        metadata["search_query"] = ran
    if metadata:
        fields["metadata"] = metadata
    return fields


def _search_text(item: Any) -> str | None:
    texts = [getattr(part, "text", None) for part in getattr(item, "content", None) or ()]
    return "\n".join(text for text in texts if isinstance(text, str)) or None


def _search_metadata(item: Any) -> dict[str, Any]:
    found = {"filename": getattr(item, "filename", None), "attributes": getattr(item, "attributes", None)}
    return {key: value for key, value in found.items() if value}


def without_sdk_default(body: dict[str, Any], extra: Any, options: Any) -> dict[str, Any]:
    """An embeddings request body without the ``encoding_format`` the SDK adds (``base64``) when
    the caller gave none: the caller's own format (a keyword or ``extra_body``) stays. The SDK
    keeps the caller's value for its post-parser (a ``partial``, or a closure in older SDKs),
    where it is "not given" when the caller gave none; a parser that says nothing leaves the body."""
    if "encoding_format" not in body or (isinstance(extra, Mapping) and "encoding_format" in extra):
        return body
    given = _parser_argument(getattr(options, "post_parser", None), "encoding_format")
    if given is _UNKNOWN or isinstance(given, str):
        return body
    return {key: value for key, value in body.items() if key != "encoding_format"}


_UNKNOWN = object()


def _parser_argument(parser: Any, name: str) -> Any:
    """The value ``name`` is bound to in a post-parser (a ``partial``'s keyword or a closure's
    variable), ``_UNKNOWN`` if it is bound to nothing there; never raises."""
    try:
        keywords = getattr(parser, "keywords", None)
        if type(keywords) is dict and name in keywords:
            return keywords[name]
        names = getattr(getattr(parser, "__code__", None), "co_freevars", ())
        cells = getattr(parser, "__closure__", None)
        if name in names and cells:
            return cells[names.index(name)].cell_contents
    except Exception:  # an empty cell, an odd parser: the body is recorded as sent
        pass
    return _UNKNOWN


def _moderation_input(value: Any) -> dict[str, Any]:
    """A moderation's input and input count: a text (one), a list of texts (several), or the
    parts of one multimodal input, its inline images noted like a chat message's."""
    if isinstance(value, list | tuple) and value and isinstance(value[0], dict):
        parts = without_media([{"content": list(value)}])[0]["content"]  # the parts, as a message holds them
        return {"input": parts, "input_count": 1}
    return {"input": value, "input_count": len(value) if isinstance(value, list | tuple) else 1}


def _message_output(message: Any) -> Any:
    """A reply message as recorded: spoken replies (``audio``) with their base64 ``data`` noted
    like an input's media, their transcript kept; a data URL in its text noted as it is when the
    reply is sent back as input."""
    audio = getattr(message, "audio", None)
    note = media_note(getattr(audio, "data", None), payload=True) if audio is not None else None
    content = getattr(message, "content", None)
    text = without_data_urls(content) if type(content) is str else content
    if note is None and text is content:
        return message
    dumped = message.model_dump(mode="json", exclude_none=True, warnings=False)
    if note is not None:
        dumped["audio"]["data"] = note
    if text is not content:
        dumped["content"] = text
    return dumped


def _tool_name(tool: Any) -> Any:
    if isinstance(tool, dict):
        function = tool.get("function") or tool.get("custom")  # a chat tool's definition, by its type
        if isinstance(function, dict):
            return function.get("name")
        return tool.get("name") or tool.get("type")
    return str(tool)


def _reader(value: Any) -> Callable[[str], Any]:
    """``value.get`` for usage kept as parsed JSON (a stream's usage event), else a reader of
    ``value``'s attributes; either gives None for a missing name."""
    if type(value) is dict:
        return value.get
    return lambda name: getattr(value, name, None)


def usage_fields(usage: Any) -> dict[str, int] | None:
    """Usage in Langfuse's keys from any OpenAI usage object (chat, responses, embeddings) or its JSON;
    a value that is no count (``pricing.is_count``) is left out."""
    if usage is None:
        return None
    # ``get(name, None)``: no call of Python code per read (``_reader``'s lambda)
    get, is_count = usage.get if type(usage) is dict else partial(getattr, usage), pricing.is_count
    # one family of names per object: asking a pydantic model for a missing field is slow
    prompt = get("prompt_tokens", None)
    if prompt is not None:  # chat, legacy completions, embeddings
        completion = get("completion_tokens", None)
        input_details, output_details = get("prompt_tokens_details", None), get("completion_tokens_details", None)
    else:  # the Responses API
        prompt = get("input_tokens", None)
        completion = get("output_tokens", None)
        input_details, output_details = get("input_tokens_details", None), get("output_tokens_details", None)
    total = get("total_tokens", None)
    result: dict[str, int] = {}
    if is_count(prompt):
        result["input"] = prompt
    if is_count(completion):
        result["output"] = completion
    if is_count(total):
        result["total"] = total
    if input_details is not None:
        read = _reader(input_details)
        if is_count(cached := read("cached_tokens")):
            result["input_cached_tokens"] = cached
        if is_count(written := read("cache_write_tokens")):  # billed apart by newer models (``pricing``)
            result["input_cache_write_tokens"] = written
    if output_details is not None and is_count(reasoning := _reader(output_details)("reasoning_tokens")):
        result["output_reasoning_tokens"] = reasoning
    return result or None


def response_fields(operation: str, response: Any, options: Any = None) -> dict[str, Any]:
    """Typed fields from a parsed (non-streamed) response; ``options``, the request's, name the
    model of an audio or image call (their responses name none)."""
    model = getattr(response, "model", None)
    usage = usage_fields(getattr(response, "usage", None))
    tier = getattr(response, "service_tier", None) if operation in _TIERED else None
    fields: dict[str, Any] = {"response_model": model, "usage": usage,
                              "cost": pricing.cost(priced_model(model, options), usage, tier)}
    if tier is not None and tier != "default":
        fields["metadata"] = tier_metadata(tier)
    if operation == "chat":
        choices = getattr(response, "choices", None) or []
        if choices:
            fields["finish_reason"] = choices[0].finish_reason
            fields["output"] = (_message_output(choices[0].message) if len(choices) == 1
                                else [_message_output(c.message) for c in choices])
    elif operation == "embeddings":
        data = getattr(response, "data", None) or []
        if data:
            first = getattr(data[0], "embedding", None)
            if isinstance(first, list):
                fields["dimensions"] = len(first)
            elif isinstance(first, str) and first:  # ``encoding_format="base64"``: float32s, 4 bytes each
                fields["dimensions"] = (len(first) * 3 // 4 - first.count("=", -2)) // 4
        fields["output"] = {"count": len(data)}
    elif operation == "text_completion":
        choices = getattr(response, "choices", None) or []
        if choices:
            fields["finish_reason"] = choices[0].finish_reason
            fields["output"] = choices[0].text if len(choices) == 1 else [c.text for c in choices]
    elif operation == "responses":
        fields["output"] = _responses_output(response)
        if isinstance(response_id := getattr(response, "id", None), str) and response_id:
            # what a later call chains to (``previous_response_id``)
            fields["metadata"] = {**fields.get("metadata", {}), "response_id": response_id}
        status = fields["finish_reason"] = getattr(response, "status", None)
        if status == "incomplete" and (reason := getattr(getattr(response, "incomplete_details", None), "reason", None)):
            # why it stopped (``max_output_tokens``, ``content_filter``), as a chat reply's finish reason says
            fields["metadata"] = {**fields.get("metadata", {}), "incomplete_reason": reason}
        if status == "failed":  # the API's own failure, reported in the response
            fields["level"] = "ERROR"
            fields["status_message"] = str(getattr(getattr(response, "error", None), "message", None) or "failed")
        elif type(fields["output"]) is list and (failure := _hosted_failure(fields["output"])) is not None:
            fields["level"], fields["status_message"] = "WARNING", failure  # the reply came, a step of it failed
    elif operation == "moderation":  # last, so that chat and embeddings test for nothing more
        fields.update(moderation_fields(getattr(response, "results", None)))
    elif operation == VECTOR_STORE_SEARCH:
        return _search_results(response, options)
    elif operation == DECISION:
        fields["output"] = getattr(response, "answers", None)  # in question order; a refusal's is one too
    else:
        return _media.response_fields(operation, response, _media.requested_model(options))
    return fields


def priced_model(model: Any, options: Any) -> Any:
    """The model a reply is priced as: the one it names, else (a compatible server's reply may
    name none) the one the request's ``options`` asked for. A reply that names a model is priced
    as that model only: an unknown one gets no cost, whatever was asked for."""
    return model if model or options is None else _media.requested_model(options)


def tier_metadata(tier: Any) -> dict[str, Any]:
    """The metadata that notes a service tier other than the standard one (it bills other rates)."""
    return {"service_tier": tier if isinstance(tier, str) else repr(tier)}


#: What a reply without an ``output_text`` property gives for it (``_responses_output``).
_NO_TEXT = object()


def _responses_output(response: Any) -> Any:
    """A Responses API reply as recorded: its text, or its output items when they show a tool at
    work (a call for the program to act on: a function's, a custom tool's, an approval request ...;
    or what a hosted tool did: a file or web search, an MCP call, code run, an image made) or there
    is no text (a refusal, a reply cut short while reasoning); None when there is no output yet
    (``background``). A generated image's base64 ``result``, a data URL in a text, is noted like an
    input's media."""
    output = getattr(response, "output", None) or []
    text = getattr(response, "output_text", _NO_TEXT)
    if text is _NO_TEXT:  # a reply without the property: ``client.beta.responses``' (a compaction's is its items)
        text = _plain_text(output) if getattr(response, "object", None) == "response" else None
    if text and not any(getattr(item, "type", None) in _TOOL_ITEMS for item in output):
        return without_data_urls(text) if type(text) is str else text
    if not output:
        return text or None
    return [_output_item(item) for item in output]


def partial_responses_output(items: list[Any], pending: dict[str, Any] | None) -> Any:
    """What a Responses stream gave before its final response, recorded as ``_responses_output``
    records a reply: the output items done (``items``) and the message still streaming
    (``pending``, a dict), or their text alone (``_plain_text``); None when nothing was streamed."""
    if pending is not None:
        items = [*items, pending]
    return without_data_urls(_plain_text(items)) or [_output_item(item) for item in items] or None


def _plain_text(items: list[Any]) -> str:
    """The text of output items that show no tool at work and hold no refusal (besides their
    messages, only reasoning), else ""."""
    texts: list[str] = []
    for item in items:
        get = _reader(item)
        kind = get("type")
        if kind in _TOOL_ITEMS:
            return ""
        for part in (get("content") or ()) if kind == "message" else ():
            read = _reader(part)
            part_kind = read("type")
            if part_kind == "refusal":
                return ""
            if part_kind == "output_text" and isinstance(text := read("text"), str):
                texts.append(text)
    return "".join(texts)


def _hosted_failure(items: list[Any]) -> str | None:
    """What the first hosted tool call that failed says (``mcp_call lookup_order: its error``), if any."""
    for item in items:
        get = _reader(item)
        kind = get("type")
        if kind in _TOOL_ITEMS and kind not in _CALL_ITEMS and (get("error") or get("status") == "failed"):
            name = get("name")
            return f"{kind}{f' {name}' if name else ''} failed: {get('error') or 'failed'}"
    return None


def _output_item(item: Any) -> Any:
    """An output item as recorded: a generated image's base64 ``result`` noted, a message's text
    with its data URLs noted (``_message_item``); ``item`` itself if it has neither."""
    kind = _reader(item)("type")
    if kind == "message":
        return _message_item(item)
    result = getattr(item, "result", None) if kind == "image_generation_call" else None
    note = media_note(result, payload=True) if result is not None else None
    if note is None:
        return item
    dumped = item.model_dump(mode="json", exclude_none=True, warnings=False)
    dumped["result"] = note
    return dumped


def _message_item(item: Any) -> Any:
    """A message output item (a parsed one, or a dict: a message still streaming) with the data URLs
    in its parts' text noted; ``item`` itself if there are none."""
    parts = _reader(item)("content")
    if not isinstance(parts, list) or not any(
            type(text := _reader(part)("text")) is str and ";base64," in text for part in parts):
        return item
    dumped = dict(item) if type(item) is dict else item.model_dump(mode="json", exclude_none=True, warnings=False)
    dumped["content"] = [{**part, "text": without_data_urls(part["text"])} if type(part.get("text")) is str
                         else part for part in (_dumped(part) for part in dumped["content"])]
    return dumped


def _dumped(part: Any) -> Any:
    """A part of a message as a dict (a dict, or a parsed part dumped)."""
    dump = getattr(part, "model_dump", None)
    return part if type(part) is dict or not callable(dump) else dump(mode="json", exclude_none=True, warnings=False)


def moderation_fields(results: Any) -> dict[str, Any]:
    """A moderation's verdict as a guardrail records it: ``passed`` when no result is flagged
    (a flagged input is the guardrail working: the level stays DEFAULT), ``reason`` the flagged
    categories (per input when there are several), each result's categories and scores as output."""
    if not isinstance(results, list) or not results:
        return {}
    output = [_moderation_result(result) for result in results]
    several = len(output) > 1
    reasons = [(f"input {index}: " if several else "") + (", ".join(found["categories"]) or "flagged")
               for index, found in enumerate(output) if found["flagged"]]
    return {"passed": not reasons, "modified": False, "reason": "; ".join(reasons) or None, "output": output}


def _moderation_result(result: Any) -> dict[str, Any]:
    """One result: flagged, the categories that are true (the API's names, ``self-harm/intent``),
    and every category's score."""
    get = _reader(result)
    categories = _by_api_name(get("categories"))
    return {"flagged": get("flagged") is True,
            "categories": [name for name, value in categories.items() if value is True],
            "category_scores": _by_api_name(get("category_scores"))}


def _by_api_name(value: Any) -> dict[str, Any]:
    """A parsed mapping of categories under the API's names (the SDK's field aliases), Nones left out."""
    if type(value) is dict:
        return {name: item for name, item in value.items() if item is not None}
    dump = getattr(value, "model_dump", None)
    return dump(mode="json", by_alias=True, exclude_none=True, warnings=False) if callable(dump) else {}
