"""What a frozen chat completion raises during a replay, without a request, when the recorded call
raised: the SDK's own error class rebuilt from the recording, so that the program's
``except openai.RateLimitError`` (or ``APIStatusError``, ``APIError`` ...) takes the recorded path
(a recorded reply is served by ``_replayed_http``), with the recorded error body (``error_body``:
whole where content is captured, else its identifiers) for the program's ``e.code``, ``e.type``.
A connection error's status is recorded with its cause (``with_cause``); the rebuilt error has the
SDK's message alone, as the original had.

The live call a replay runs with overrides (``overridden``) sends them over the caller's request,
``extra_body`` included, and its observation (or the framework's that owns it) records the request
as sent: the model, parameters and messages after the overrides (``show_overridden``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

from ...bounds import was_cut
from ...context import capture_enabled
from ...interception import RecordedError, active
from ...observation import Observation, describe_error
from . import _extract

#: Where a connection error's recorded status gives its cause (``with_cause``).
CAUSE = " Cause: "
#: The longest cause recorded, in characters (an OS error's text, a proxy's reply ...).
_MAX_CAUSE = 300
#: The metadata key of a failed call's error body (``error_body``).
ERROR_BODY = "error_body"
#: The keys of an error body kept where content is not captured: what names the error, not content.
_IDENTIFIERS = ("message", "type", "param", "code")
#: The status code in an SDK status error's message (``"Error code: 429 - {...}"``).
_STATUS_CODE = re.compile(r"Error code: (\d{3})\b")


def with_cause(error: BaseException) -> str | None:
    """A connection error's status with what caused it: the SDK says only ``Connection error.``
    (or ``Request timed out.``) and keeps the HTTP library's error, which says what failed
    (refused, reset, a DNS failure ...), on ``__cause__``; the host and port are added (never the
    path or query). None for any other error; never raises."""
    try:
        import openai

        cause = error.__cause__
        if not isinstance(error, openai.APIConnectionError) or cause is None:
            return None
        described = describe_error(cause)
        if len(described) > _MAX_CAUSE:
            described = described[:_MAX_CAUSE - 3] + "..."
        url = getattr(getattr(error, "request", None), "url", None)
        host, port = getattr(url, "host", None), getattr(url, "port", None)
        where = f" ({host}:{port})" if host and port else f" ({host})" if host else ""
        return f"{describe_error(error)}{CAUSE}{described}{where}"
    except Exception:  # the status stays the SDK's own message
        return None


def error_body(error: BaseException) -> dict[str, Any] | None:
    """The metadata recording an SDK API error's ``body`` (the API's error object: ``code``,
    ``type``, ``param``, ``message``), from which a replay rebuilds it (``replayed_error``): whole
    where content is captured, else its short identifiers alone (the message is in the status
    already). None for another error, or one without a body; never raises."""
    try:
        import openai

        body = error.body if isinstance(error, openai.APIError) else None
        if body is not None and not capture_enabled():
            body = {key: body[key] for key in _IDENTIFIERS if isinstance(body.get(key), str | int)} if isinstance(
                body, Mapping) else None
        return {ERROR_BODY: body} if body else None
    except Exception:  # the error is recorded without its body
        return None


def _recorded_body(record: Mapping[str, Any] | None) -> Any:
    """The recorded error body (``error_body``), None when there is none whole."""
    body = ((record or {}).get("metadata") or {}).get(ERROR_BODY)
    return body if isinstance(body, Mapping | str) and not was_cut(body) else None


def rejected_reply(record: Mapping[str, Any]) -> bool:
    """Whether ``record`` is a whole reply that a parse helper (``chat.completions.parse``,
    ``responses.parse``) rejected: this integration's call, failed with the reply it was sent, not
    streamed (a stream that failed part way records what it gave before), failed by an exception
    (``"TypeName: message"``; an error event's status is its message alone). Served in a replay,
    the SDK rejects it again, raising what the recorded call raised."""
    parameters = record.get("model_parameters")
    streamed = isinstance(parameters, Mapping) and bool(parameters.get("stream"))
    raised = str(record.get("status_message") or "").partition(": ")[0].isidentifier()
    return (record.get("level") == "ERROR" and record.get("output") is not None and not streamed and raised
            and str(record.get("name", "")).startswith("openai."))


def replayed_error(recorded: RecordedError, client: Any, options: Any,
                   record: Mapping[str, Any] | None = None) -> Exception:
    """The error a frozen call raises whose recording ``record`` raised ``recorded.status_message``
    (``"TypeName: message"``): the SDK's class of that name with the recorded message and body
    (``error_body``: ``code``, ``type`` ...; a status error with the recorded status code, on a
    request to the call's URL); a name that is no SDK error gives ``recorded`` itself
    (``RecordedError``, of a built-in class when it names one), unless its message is a status
    error's: a framework's own class for it (LangChain's ``OpenAIRateLimitError``), recorded by its
    generation, gives the SDK's class for that status, which the framework turns into its own again."""
    import openai

    type_name, _, message = (recorded.status_message or "").partition(": ")
    error_class = getattr(openai, type_name, None)
    status = _STATUS_CODE.search(message)
    if not (isinstance(error_class, type) and issubclass(error_class, openai.APIError)):
        if status is None or status.start() != 0:  # the SDK's message opens with it
            return recorded
        error_class = None
    request = client._client.build_request(options.method, client._prepare_url(options.url))
    if error_class is None or issubclass(error_class, openai.APIStatusError):
        http = sys.modules[type(request).__module__]  # the SDK's HTTP library, whichever it is
        response = http.Response(int(status.group(1)) if status else 500, request=request)
        if error_class is None:
            return client._make_status_error(message, body=_recorded_body(record), response=response)
        return error_class(message, response=response, body=_recorded_body(record))
    if issubclass(error_class, openai.APITimeoutError):
        return error_class(request=request)
    if issubclass(error_class, openai.APIConnectionError):  # its message, without the cause recorded
        return error_class(message=message.partition(CAUSE)[0], request=request)
    if error_class is openai.APIError:
        return error_class(message, request, body=_recorded_body(record))
    return recorded  # a subclass whose arguments the recording does not hold


def overridden(options: Any, body: dict[str, Any], extra: Any, overrides: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Options of the SDK's (a copy: the caller's stay as they are) for the request with
    ``overrides`` applied, and that request as sent (``extra_body`` merged over the body). An
    override wins over the caller's ``extra_body``, which the SDK merges last; a dotted parameter
    (``reasoning.effort``) sets that key of the object the request has there, keeping its others;
    ``messages`` (a Responses call's ``input``) replace the request's own."""
    from openai._compat import model_copy

    extra = dict(extra) if isinstance(extra, Mapping) else None
    sent = {**body, **extra} if extra else dict(body)
    settings = _settings(overrides, sent)
    for key, value in settings.items():
        *path, last = key.split(".")
        target = sent
        for part in path:  # a copy of each object on the way: the caller's are not changed
            inner = target.get(part)
            target[part] = dict(inner) if isinstance(inner, Mapping) else {}
            target = target[part]
        target[last] = value
    changed = _top(settings)
    options = model_copy(options)
    options.json_data = {**body, **{key: sent[key] for key in changed}}
    if extra:
        options.extra_json = {key: value for key, value in extra.items() if key not in changed}
    applied = getattr(active(), "overrides_applied", None)  # the replay learns its overrides were sent
    if settings and callable(applied):
        applied()
    return options, sent


def _settings(overrides: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """The request keys (dotted for a nested one) that ``overrides`` set, with their values."""
    settings = dict(overrides.get("model_parameters") or {})
    if "model" in overrides:
        settings["model"] = overrides["model"]
    settings.update({key: overrides[key] for key in ("messages", "input") if key in overrides and key in request})
    return settings


def _top(settings: Mapping[str, Any]) -> set[str]:
    return {key.split(".")[0] for key in settings}


def show_overridden(obs: Observation, operation: str, sent: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
    """Record on ``obs`` what the overrides changed in the request ``sent``: the model, the
    parameters (over those recorded) and the input, as this integration records a request."""
    fields = _extract.request_fields(operation, dict(sent))
    changed = _top(_settings(overrides, sent))
    shown: dict[str, Any] = {"model": fields.get("model")} if "model" in changed else {}
    extracted = fields.get("model_parameters") or {}
    parameters = {key: extracted.get(key, sent[key]) for key in sorted(changed - {"model", "messages", "input"})}
    if parameters:
        shown["model_parameters"] = {**(obs.fields.get("model_parameters") or {}), **parameters}
    if changed & {"messages", "input"}:
        shown["input"] = fields.get("input")
    obs.update(**shown)
