"""OpenAI: every chat completion, Responses API call (``client.beta.responses``' too), legacy
completion, decision (``client.decisions``) and embedding becomes a typed observation, for sync and
async clients, Azure (its v1 API by the plain client too) and any OpenAI-compatible base URL; every
moderation becomes a ``guardrail`` (``passed`` when no input is flagged, ``reason`` the flagged
categories, level DEFAULT: a flagged input is the guardrail working). Audio (transcriptions,
translations, speech) and image (generate, edit, variations) calls are generations too, their
uploads and generated media recorded as notes of kind and size (``_media``).

A background Responses call (``background=True``) records the request when it is made, and its
reply as one more generation when a ``responses.retrieve`` or ``cancel`` first finds it finished
(``_background``). A failed connection's status gives its cause (``_replayed.with_cause``).

One choke point per client kind is wrapped: ``SyncAPIClient.request`` and
``AsyncAPIClient.request``, dispatched on the request path, so ``with_raw_response`` and every
resource method are covered alike. A parse helper's call (``chat.completions.parse``,
``responses.parse``) whose reply the SDK rejects (cut short, filtered, failing the caller's
schema) is an error recorded with that reply, its usage and cost: the API billed it.

Which instrumentation records a call (one generation per call): the outermost. If a LangChain or
LlamaIndex generation (or embedding; for a moderation, any guardrail) observation is current, this
integration creates nothing and only fills in what that observation lacks (usage, returned model,
finish reason, cost; a guardrail's ``passed``, ``modified``, ``reason``): from a stream when it
ends, its usage asked for and hidden from the framework as for a stream recorded here.
If another OpenTelemetry instrumentor's ``gen_ai`` span is current, it does nothing at all.

Streams: the caller gets the SDK's own stream object, its class patched (``_stream``).
``include_usage: true`` is added to ``stream_options`` when the caller did not decide on usage
(in the body or in ``extra_body``) and the stream can be traced, and the extra usage-only event
is then hidden from the caller: cut from the response bytes before the SDK decodes it when a read
holds all of it, else dropped from the chunks (``stream_usage=False`` turns this off: the server
then sends no usage); it follows the finish reason, and is read before a stream left there (by
a ``break`` or a stream helper's error) closes (``_trailing``). A server that rejects
``stream_options`` (Azure OpenAI before API version 2024-09-01, some compatible servers) gets the caller's own request again at once, and no
``stream_options`` from then on (``_endpoints``). A raw response whose body the caller reads (a raw stream,
``with_streaming_response``) is recorded when the caller parses it (``_raw``). Content capture
follows ``autotrace.content_capture(...)`` (per block/call) and the ``capture_content`` setting.

Replay: a frozen chat completion (streamed or not, raw or parsed, made here or for a framework's
generation) is served by the SDK from the recorded reply, rebuilt as the HTTP response the API
would have sent, without a request; or it raises the SDK's error rebuilt from the recording when
the recorded call raised, with the error's body (``code``, ``type`` ...) recorded in ``error_body``
metadata (``_replayed``, ``_replayed_http``). A reply a parse helper rejected is served and rejected
again: the program gets the recorded call's error, never a request. A live one applies overrides
(``model``, ``model_parameters``, ``messages``). A frozen Responses API call is served the same
way (``_replayed_responses``: which replies it rebuilds). Frozen embeddings and moderations run live.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any

from ... import recorder
from ..._internal import count, guarded_failure
from ...interception import Intercept, RecordedError
from ...observation import Observation
from ...runtime import state
from .. import ownership
from ..base import Integration
from . import _background, _extract, _raw, _replayed, _replayed_http, _stream, _websocket
from ._endpoints import NO_DICT as _NO_DICT
from ._endpoints import REFUSALS as _REFUSALS
from ._endpoints import provider as _provider
from ._media_stream import stream_state as _state_for
from .pricing import set_prices

__all__ = ["INTEGRATION", "OpenAIIntegration", "set_prices"]

_RAW_HEADER = "X-Stainless-Raw-Response"
#: The operations a replay freezes (served from the recording, ``_Call.frozen``).
_FREEZABLE = frozenset({"chat", "responses"})
#: What a request gives when its ``stream_options`` were rejected (it is then sent again).
_REFUSED = object()


class _Call:
    """One intercepted request: decides whether to trace it, and records what it returns."""

    __slots__ = ("choices", "endpoint", "intercept", "kept", "obs", "operation", "options", "owner", "raw",
                 "request", "stream", "swapped", "usage_added")

    def __init__(self, client: Any, options: Any, stream: bool) -> None:
        self.obs: Observation | None = None
        self.owner: Observation | None = None
        self.options = options
        self.request = options  # the options of the request as made: the caller's, or a replay's overridden
        self.stream = stream
        self.usage_added = False
        self.endpoint: tuple[str, Any] = ("", None)
        self.choices = 1
        self.operation = ""
        self.raw = False
        self.intercept: Any = None
        self.swapped: tuple[dict[str, Any], dict[str, Any]] | None = None
        #: The reply a parse helper's post-parser was given (``_keep_reply``), once it has run.
        self.kept: list[Any] | None = None
        try:
            self._prepare(client)
        except Exception as exc:  # the call goes untraced, as the caller made it
            guarded_failure("openai.prepare", exc)
            self._abandon()

    def _abandon(self) -> None:
        """Send the request as made (no usage asked for) and end the observation started (never left open)."""
        try:
            self.put_back()
        except Exception as exc:
            guarded_failure("openai.prepare", exc)
        self.options, self.usage_added = self.request, False
        obs, self.obs = self.obs, None
        if obs is not None:
            obs.end()

    def _prepare(self, client: Any) -> None:
        found = _extract.endpoint(self.options.url)
        body = self.options.json_data
        if found is None or not isinstance(body, dict):
            return
        extra = getattr(self.options, "extra_json", None)  # ``extra_body``: the SDK merges it over the body
        sent = {**body, **extra} if extra and isinstance(extra, Mapping) else body
        self.operation, name, kind = found
        headers = self.options.headers
        self.raw = bool(headers) and headers.get(_RAW_HEADER) is not None
        owner = ownership.owner(kind)
        if owner is not None:
            if not isinstance(owner, Observation):
                return
            self.owner = owner  # a framework's observation records this call; a replay may still steer it
            if self.operation in _FREEZABLE:
                ownership.counted_request(owner)
            base_url = _provider(client)[1] if self.stream else ""
        else:
            obs = self.obs = recorder.start(kind, name)
            provider, base_url = _provider(client)
            asked = _extract.without_sdk_default(sent, extra, self.options) if self.operation == "embeddings" else sent
            fields = _extract.request_fields(self.operation, asked, self.options)
            extra_metadata = fields.pop("metadata", None)  # a vector store search's options
            obs.update(provider=provider, **fields,
                       metadata={"base_url": base_url} if extra_metadata is None else {"base_url": base_url,
                                                                                      **extra_metadata})
            self.obs = obs
        if self.stream:  # an Azure client's API version decides what its deployments accept
            self.endpoint = (base_url, getattr(client, "__dict__", _NO_DICT).get("_api_version"))
        intercept = self.intercept = (self.obs or self.owner).intercept  # type: ignore[union-attr]
        if intercept is not None and not intercept.frozen and intercept.overrides:  # recorded as sent
            self.options, sent = _replayed.overridden(self.options, body, extra, intercept.overrides)
            self.request = self.options
            body, extra = self.options.json_data, self.options.extra_json
            _replayed.show_overridden(self.obs or self.owner, self.operation, sent, intercept.overrides)
        # a raw stream stays as the caller made it (no chunk of it is hidden); an owner's is traced for the owner
        streamed_here = self.stream and not self.raw
        if self.stream:  # the choices it streams: ``n`` of them, for each prompt of a legacy completion
            choices = sent.get("n")
            self.choices = (choices if type(choices) is int else 1) * (
                _extract.input_count(sent.get("prompt")) if self.operation == "text_completion" else 1)
        if (streamed_here and state.stream_usage and self.operation in ("chat", "text_completion")
                and _stream.trackable() and self.endpoint not in _REFUSALS.endpoints):
            stream_options = _with_usage(sent.get("stream_options"))
            if stream_options is not None and (sent is body or not extra or "stream_options" not in extra):
                body = {**body, "stream_options": stream_options}
                self.usage_added = True
        if body is not self.options.json_data:
            self._send("json_data", body)
        if self.obs is not None and self.operation in _FREEZABLE and callable(getattr(self.options, "post_parser", None)):
            self._keep_reply(self.options.post_parser)

    def _keep_reply(self, post_parser: Any) -> None:
        """Have the post-parser of a parse helper (``chat.completions.parse``, ``responses.parse``)
        keep the reply it is given: when it raises (a reply cut short or filtered, a schema's
        validator failing), the reply the API sent, and billed, is recorded with the error. The
        reply is kept in a list, not on this call: the SDK's copy of the options holds the parser."""
        kept: list[Any] = []
        self.kept = kept

        def keeping(reply: Any) -> Any:
            kept[:] = (reply,)  # the last reply given (a replayed one may precede the live one)
            return post_parser(reply)

        self._send("post_parser", keeping)

    def _send(self, key: str, value: Any) -> None:
        """Have the SDK use ``value`` as the options' ``key`` (the body to send, a post-parser)
        instead of the caller's. The SDK's ``request`` copies the options it is given first and
        works on its copy, so the field is swapped in place and put back when the call returns or
        raises (``put_back``) instead of copying the options model here (about 20,000
        instructions). The SDK builds the options per call; one that code shares between
        concurrent calls would show the swapped field meanwhile. Options that keep their fields
        elsewhere are copied."""
        options = self.options
        fields = getattr(options, "__dict__", None)
        if type(fields) is dict and key in fields and fields[key] is getattr(options, key):
            if self.swapped is None:
                self.swapped = (fields, {})
            self.swapped[1].setdefault(key, fields[key])
            fields[key] = value
        else:
            self.options = copy.copy(options)
            setattr(self.options, key, value)

    def put_back(self) -> None:
        """Give the caller's options their own fields again (after the SDK is done with them)."""
        swapped, self.swapped = self.swapped, None
        if swapped is not None:
            swapped[0].update(swapped[1])

    def frozen(self, client: Any, cast_to: Any, stream_cls: Any) -> Any | None:
        """What a replay that froze this chat call (streamed or not, raw or parsed, made here or for
        a framework's generation) or Responses API call gives instead of a request: the SDK's error
        rebuilt from the recording when the recorded call raised (``_replayed``), else the recorded
        reply as an HTTP response for the SDK to process (``_replayed_http``); None for a call that
        runs (also when the reply cannot be rebuilt). Entered only when the call has an intercept."""
        intercept = self.intercept
        if not intercept.frozen or self.operation not in _FREEZABLE:
            return None
        if self.owner is not None and ownership.recorded_requests(intercept.record) > 1:
            count("openai.replay_live")  # its owner's one output answered several requests
            return None
        try:  # the recording of a call alike sent this input, when concurrent calls started in another order
            record = _replayed_http.rematched(intercept.record or {}, self.options, self.operation)
            recorded_error = Intercept(frozen=True, record=dict(record)).error
            if recorded_error is None:
                found = _replayed_http.reply(client, cast_to, self.options, self.stream, stream_cls, record,
                                             self.operation)
                if found is not None or not _replayed.rejected_reply(record):
                    return found
                # a reply the parse helper rejected, which cannot be rebuilt: its error, never a request
                error = recorded_error = RecordedError.of(record.get("status_message"))
            else:
                error = _replayed.replayed_error(recorded_error, client, self.options, record)
            if self.operation == "responses" and error is recorded_error and not _replayed.rejected_reply(record):
                count("openai.replay_live")  # no SDK error: a failed reply (``status`` failed) or an error
                return None  # event, which did not raise
        except Exception as exc:
            guarded_failure("openai.replay", exc)
            return None
        self._mark_frozen()
        self._note_body(error)
        self.failed(recorded_error.status_message or error)  # the recorded message, whatever is raised
        return error

    def rejected(self, error: Exception) -> bool:
        """Whether a frozen reply failed in the parse helper's post-parser (it was given the reply):
        the outcome the recorded call had, recorded as it was and raised, never sent live."""
        if not self.kept:
            return False
        self._mark_frozen()
        self.failed(error)
        return True

    def served(self, result: Any) -> Any:
        """Record a frozen call's reply (``frozen``), as processed by the SDK, like a live one."""
        self._mark_frozen()
        return self.succeeded(result)

    def _mark_frozen(self) -> None:
        try:
            (self.obs or self.owner).update(metadata={"replay": "frozen"})  # type: ignore[union-attr]
        except Exception as exc:
            guarded_failure("openai.replay", exc)

    def succeeded(self, result: Any) -> Any:
        """Record the result (tracking a stream) and return what the caller must receive."""
        obs = self.obs
        try:
            if self.swapped is not None:
                self.put_back()
            if obs is None:
                if self.owner is not None:
                    if not self.raw:
                        self._enrich_owner(result)
                    elif not self.stream and _read_whole(result):  # the SDK caches the parse: the owner's code gets this one
                        self._enrich_owner(result.parse())
                return result
            if self.stream and not self.raw:
                stream_state = _state_for(self.operation, self.options, self.usage_added, self.choices)
                if _stream.track(result, obs, stream_state):
                    if self.usage_added:
                        stream_state.watch_usage_event(result)
                    return result
                count("openai.stream_untracked")  # a stream class the patches do not reach
                obs.end()
                return result
            parsed = result
            if self.raw:
                if self.stream or not _read_whole(result):  # the caller reads the body: recorded when parsed
                    if _raw.wait_for_parse(result, obs, self.operation, self.stream, self.choices, self.options,
                                          self.kept):
                        return result
                    parsed = None
                else:
                    try:
                        parsed = result.parse()
                    except Exception as error:  # a parse helper's post-parser: the caller's parse raises it too
                        self.failed(error)
                        return result
            if parsed is not None:
                obs.defer(_extract.response_fields, self.operation, parsed, self.options)
                if self.operation == "responses":  # a background response: its reply comes later
                    _background.created(obs, parsed)
            obs.end()
        except Exception as exc:
            guarded_failure("openai.response", exc)
            if obs is not None:
                obs.end()
        return result

    def _enrich_owner(self, result: Any) -> None:
        """Fill in what the owner lacks: from the response, or from a stream when it ends (its usage
        chunk hidden from the owner's code, as for a stream traced here)."""
        if not self.stream:
            ownership.enrich_reply(self.owner, _extract.response_fields(self.operation, result, self.options))
            return
        stream_state = _state_for(self.operation, self.options, self.usage_added, self.choices)
        if not _stream.track(result, self.owner, stream_state, _stream.OwnedStreamTracking):
            count("openai.stream_untracked")
        elif self.usage_added:
            stream_state.watch_usage_event(result)

    def usage_refused(self, error: BaseException) -> bool:
        """Whether the server rejected the ``stream_options`` autotrace added: the caller's own
        options are then put back, for the caller's request to be sent as it was made."""
        if not self.usage_added or not _REFUSALS.refused(error, self.endpoint):
            return False
        self.usage_added = False
        self.put_back()
        return True

    def _note_body(self, error: BaseException) -> None:
        """Record a chat or Responses call's API error's body (``_replayed.error_body``), on a
        framework's generation too: a replay rebuilds the error with it (``code``, ``type`` ...)."""
        target = self.obs or self.owner
        if target is not None and self.operation in _FREEZABLE and (body := _replayed.error_body(error)) is not None:
            target.update(metadata=body)

    def failed(self, error: BaseException | str) -> None:
        try:
            if self.swapped is not None:
                self.put_back()
        except Exception as exc:
            guarded_failure("openai.response", exc)
        if isinstance(error, BaseException):
            self._note_body(error)
        if self.obs is None:
            return
        try:  # the caller's error is re-raised after this: never replaced by one of autotrace's
            if self.kept:  # the reply came, a parse helper rejected it: what it said and cost
                self.obs.defer(_extract.response_fields, self.operation, self.kept[0], self.options)
            self.obs.record_error(error)
            if isinstance(error, BaseException) and error.__cause__ is not None:
                with_cause = _replayed.with_cause(error)
                if with_cause is not None:  # the status only: the exception event is the SDK's own
                    self.obs.record_error(with_cause)
        except Exception as exc:
            guarded_failure("openai.response", exc)
        self.obs.end()


def _read_whole(response: Any) -> bool:
    """Whether a raw response's body has been read (``with_raw_response``), so parsing it here
    neither waits for the network nor takes a read from the caller: not so for
    ``with_streaming_response``, nor for an async response, whose ``parse`` is a coroutine (both
    are recorded when the caller parses them, ``_raw``)."""
    http_response = getattr(response, "http_response", None)
    return (getattr(http_response, "is_closed", False) is True
            and not inspect.iscoroutinefunction(getattr(response, "parse", None)))


#: The stream options of OpenAI's API besides ``include_usage``: with only these, asking for usage
#: adds one usage event and nothing else. Another server's (vLLM's ``continuous_usage_stats``) may
#: put usage on every chunk once it is asked, which the caller would see: not asked then.
_STREAM_OPTIONS = frozenset({"include_obfuscation"})


def _with_usage(stream_options: Any) -> dict[str, Any] | None:
    """The caller's ``stream_options`` asking for usage too, or None if the caller decided on usage
    (``include_usage`` given, true or false) or sent options autotrace cannot add to (not a dict,
    or options of another server than OpenAI's)."""
    if stream_options is None:
        return {"include_usage": True}
    if type(stream_options) is dict and "include_usage" not in stream_options and _STREAM_OPTIONS.issuperset(
            stream_options):
        return {**stream_options, "include_usage": True}
    return None


def _sync_request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    cast_to, options, stream = _arguments(args, kwargs)
    call = _Call(instance, options, stream)
    if call.obs is None and call.owner is None:
        if (response_id := _background.watched(options)) is not None:
            result = wrapped(*args, **kwargs)
            _background.fetched(response_id, result)
            return result
        return wrapped(*args, **kwargs)
    if call.intercept is not None:  # a replay: a frozen call is served from its recording
        replayed = call.frozen(instance, cast_to, kwargs.get("stream_cls"))
        if isinstance(replayed, Exception):
            raise replayed
        if replayed is not None and (served := _replayed_http.serve(replayed, instance, call.rejected)) is not None:
            return call.served(served)
    try:
        result = wrapped(cast_to, call.options, **_rest(kwargs))
    except BaseException as error:
        if not call.usage_refused(error):
            call.failed(error)
            raise
        result = _REFUSED
    if result is _REFUSED:  # sent again as the caller made it, outside the handler: its error chains to nothing
        try:
            result = wrapped(cast_to, call.request, **_rest(kwargs))
        except BaseException as error:
            call.failed(error)
            raise
    return call.succeeded(result)


async def _async_request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    cast_to, options, stream = _arguments(args, kwargs)
    call = _Call(instance, options, stream)
    if call.obs is None and call.owner is None:
        if (response_id := _background.watched(options)) is not None:
            result = await wrapped(*args, **kwargs)
            _background.fetched(response_id, result)
            return result
        return await wrapped(*args, **kwargs)
    if call.intercept is not None:  # a replay: a frozen call is served from its recording
        replayed = call.frozen(instance, cast_to, kwargs.get("stream_cls"))
        if isinstance(replayed, Exception):
            raise replayed
        if replayed is not None and (served := await _replayed_http.aserve(replayed, instance, call.rejected)) is not None:
            return call.served(served)
    try:
        result = await wrapped(cast_to, call.options, **_rest(kwargs))
    except BaseException as error:
        if not call.usage_refused(error):
            call.failed(error)
            raise
        result = _REFUSED
    if result is _REFUSED:  # sent again as the caller made it, outside the handler: its error chains to nothing
        try:
            result = await wrapped(cast_to, call.request, **_rest(kwargs))
        except BaseException as error:
            call.failed(error)
            raise
    return call.succeeded(result)


def _arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, bool]:
    cast_to = args[0] if args else kwargs.get("cast_to")
    options = args[1] if len(args) > 1 else kwargs.get("options")
    return cast_to, options, bool(kwargs.get("stream", False))


def _rest(kwargs: dict[str, Any]) -> dict[str, Any]:
    if "cast_to" not in kwargs and "options" not in kwargs:  # the SDK passes both by position
        return kwargs
    return {k: v for k, v in kwargs.items() if k not in ("cast_to", "options")}


class OpenAIIntegration(Integration):
    name = "openai"
    distribution = "openai"
    module = "openai"
    supported = ">=1.40,<4"

    def _instrument(self) -> None:
        expects = ("cast_to", "options")  # what ``_arguments`` reads by position
        self.patcher.wrap("openai._base_client", "SyncAPIClient.request", _sync_request, expects=expects)
        self.patcher.wrap("openai._base_client", "AsyncAPIClient.request", _async_request, expects=expects)
        _stream.patch(self.patcher)
        _raw.patch(self.patcher)
        _websocket.patch(self.patcher)  # the Responses API's WebSocket mode

    def _uninstrument(self) -> None:
        _background.forget_all()
        _websocket.unpatch()


INTEGRATION = OpenAIIntegration()
