"""Frozen calls whose recording did not hold their outcome as it was. A decorated function whose
output was not recorded (``capture_output=False``, content capture off) returned None in a replay
instead of its value; it now stops the replay. A ``parse`` call whose reply the SDK rejected was
sent live in a replay; the recorded reply is now rejected again, no request made. A replayed API
error had no ``body``, ``code`` or ``type``; they are now recorded and rebuilt. Real SDK over HTTP
to the loopback fake."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pydantic
import pytest

import autotrace
from autotrace.interception import RecordedError, ReplayStop
from autotrace.replay import areplay, replay
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

CALLS: Counter[str] = Counter()
MESSAGES = [{"role": "user", "content": "weather?"}]


def _recorded(traced: Traced, entry: Callable[[], Any]) -> tuple[list[dict[str, Any]], str, Any]:
    """Run ``entry`` once: its trace, the id of its ``answer`` generation, and what it returned."""
    result = asyncio.run(entry()) if asyncio.iscoroutinefunction(entry) else entry()
    (summary,) = autotrace.local_store().traces() if autotrace.flush(5) else []
    records = traced.trace(summary["trace_id"])
    return records, next(r["id"] for r in records if r["name"] == "answer"), result


def _replayed(traced: Traced, original: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the one trace besides ``original``'s (the replay's)."""
    assert autotrace.flush(5)
    (other,) = [t for t in autotrace.local_store().traces() if t["trace_id"] != original[0]["trace_id"]]
    return traced.trace(other["trace_id"])


# -- a decorated function whose output was not recorded ----------------------------------------------

@autotrace.observe(name="fetch", capture_output=False)
def fetch_uncaptured(x: int) -> int:
    CALLS["fetch"] += 1
    return x * 10


@autotrace.observe(name="fetch")
def fetch(x: int) -> int:
    CALLS["fetch"] += 1
    return x * 10


@autotrace.observe(name="fetch", capture_output=False)
async def afetch_uncaptured(x: int) -> int:
    CALLS["fetch"] += 1
    return x * 10


def _in_capture_off(x: int) -> int:
    with autotrace.content_capture(False):
        return fetch(x)


def _program(get: Callable[[int], int]) -> Callable[[], Any]:
    def turn() -> Any:
        with autotrace.start_chain("turn"):
            value = get(4)
            with autotrace.start_generation("answer", model="m"):
                return value

    return turn


_STOPPED = ("replay stopped: the output of span 'fetch' was not recorded (capture_output=False, or content "
            "capture off): frozen, it would return None in place of what it returned")


@pytest.mark.parametrize("get", [fetch_uncaptured, _in_capture_off], ids=["capture_output=False", "content_capture"])
def test_a_function_whose_output_was_not_recorded_stops_the_replay(traced: Traced, get: Any) -> None:
    turn = _program(get)
    records, at, result = _recorded(traced, turn)
    assert result == 40
    (recorded,) = [r for r in records if r["name"] == "fetch"]
    assert recorded["output"] is None and recorded["metadata"] == {"autotrace.output_captured": False}
    CALLS.clear()
    with pytest.raises(ReplayStop) as stopped:  # before: the replay returned None in place of 40
        replay(records, at, turn)
    assert str(stopped.value) == _STOPPED
    assert CALLS == {}  # frozen: not run in place of its recorded outcome either
    assert [(r["name"], r["level"], r["status_message"]) for r in _replayed(traced, records)] == [
        ("turn", "WARNING", f"ReplayStop: {_STOPPED}"), ("fetch", "ERROR", _STOPPED)]


def test_a_coroutine_whose_output_was_not_recorded_stops_the_replay(traced: Traced) -> None:
    async def turn() -> Any:
        with autotrace.start_chain("turn"):
            value = await afetch_uncaptured(4)
            with autotrace.start_generation("answer", model="m"):
                return value

    records, at, result = _recorded(traced, turn)
    assert result == 40
    CALLS.clear()
    with pytest.raises(ReplayStop, match="output of span 'fetch' was not recorded"):
        asyncio.run(areplay(records, at, turn))
    assert CALLS == {}


def test_capture_off_when_recorded_stops_the_replay_of_a_function(tmp_path: Path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", capture_content=False,
                      export_interval=0.05)
    turn = _program(fetch)
    records, at, _ = _recorded(Traced(tmp_path / "t.db"), turn)
    with pytest.raises(ReplayStop, match="output of span 'fetch' was not recorded"):
        replay(records, at, turn)


@autotrace.observe(name="fetch")
def fetch_nothing(x: int) -> None:
    CALLS["fetch"] += 1


def test_a_function_that_returned_none_still_replays_none(traced: Traced) -> None:
    turn = _program(fetch_nothing)
    records, at, _ = _recorded(traced, turn)
    assert [r["metadata"] for r in records if r["name"] == "fetch"] == [{}]  # recorded output: none given
    CALLS.clear()
    assert replay(records, at, turn).result is None
    assert CALLS == {}


# -- a parse call whose reply the SDK rejected ----------------------------------------------------------

class Weather(pydantic.BaseModel):
    city: str


def _parse_program(fake: FakeOpenAI, ask: Callable[[openai.OpenAI], Any]) -> Callable[[], Any]:
    def turn() -> Any:
        with autotrace.start_chain("turn"), openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0) as client:
            try:
                got: Any = ask(client)
            except Exception as error:
                got = (type(error), str(error))
            with autotrace.start_generation("answer", model="m"):
                return got

    return turn


def _chat_parse(client: openai.OpenAI) -> Any:
    return client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Weather)


def _raw_chat_parse(client: openai.OpenAI) -> Any:
    return client.chat.completions.with_raw_response.parse(model="gpt-4o-mini", messages=MESSAGES,
                                                           response_format=Weather).parse()


def _responses_parse(client: openai.OpenAI) -> Any:
    return client.responses.parse(model="gpt-4o-mini", input="weather?", text_format=Weather)


@pytest.mark.parametrize(("ask", "finish", "content", "error", "name"), [
    (_chat_parse, "length", '{"city": "Pa', openai.LengthFinishReasonError, "openai.chat"),
    (_chat_parse, "content_filter", None, openai.ContentFilterFinishReasonError, "openai.chat"),
    (_chat_parse, "stop", '{"town": "Lyon"}', pydantic.ValidationError, "openai.chat"),
    (_raw_chat_parse, "length", '{"city": "Pa', openai.LengthFinishReasonError, "openai.chat"),
    (_responses_parse, None, '{"town": "Lyon"}', pydantic.ValidationError, "openai.responses"),
], ids=["length", "content_filter", "schema", "raw", "responses"])
def test_a_parse_reply_the_sdk_rejected_is_rejected_again_without_a_request(
        traced: Traced, fake: FakeOpenAI, ask: Any, finish: str | None, content: str | None, error: type,
        name: str) -> None:
    turn = _parse_program(fake, ask)
    fake.script(reply=content or "", finish_reason=finish, usage=(9, 4))
    records, at, result = _recorded(traced, turn)
    assert result[0] is error
    (original,) = [r for r in records if r["name"] == name]
    sent = len(fake.requests)
    replayed = replay(records, at, turn)
    assert fake.requests[sent:] == []  # before: sent live, and another error (the fake's echo) raised
    assert replayed.result == result
    (frozen,) = [r for r in _replayed(traced, records) if r["name"] == name]
    assert (frozen["level"], frozen["status_message"], frozen["output"], frozen["metadata"]["replay"]) == (
        "ERROR", original["status_message"], original["output"], "frozen")


async def test_an_async_parse_reply_the_sdk_rejected_is_rejected_again(traced: Traced, fake: FakeOpenAI) -> None:
    async def turn() -> Any:
        client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0)
        with autotrace.start_chain("turn"):
            with pytest.raises(openai.LengthFinishReasonError):
                await client.chat.completions.parse(model="gpt-4o-mini", messages=MESSAGES, response_format=Weather)
            with autotrace.start_generation("answer", model="m"):
                return "done"

    fake.script(reply='{"city": "Pa', finish_reason="length")
    await turn()
    (summary,) = autotrace.local_store().traces() if autotrace.flush(5) else []
    records = traced.trace(summary["trace_id"])
    sent = len(fake.requests)
    result = await areplay(records, next(r["id"] for r in records if r["name"] == "answer"), turn)
    assert result.result == "done" and fake.requests[sent:] == []


def test_a_rejected_reply_that_cannot_be_rebuilt_raises_the_recorded_error(traced: Traced, fake: FakeOpenAI) -> None:
    turn = _parse_program(fake, _chat_parse)
    fake.script(reply='{"city": "Pa', finish_reason="length")
    records, at, _ = _recorded(traced, turn)
    (call,) = [r for r in records if r["name"] == "openai.chat"]
    call["output"] = {**call["output"], "audio": {"id": "a"}}  # a reply it does not rebuild (spoken audio)
    sent = len(fake.requests)
    kind, message = replay(records, at, turn).result
    assert fake.requests[sent:] == []  # before: sent live
    assert issubclass(kind, RecordedError) and message == call["status_message"]


# -- a replayed API error's body ----------------------------------------------------------------------------

def _create(client: openai.OpenAI) -> Any:
    try:
        client.chat.completions.create(model="m", messages=MESSAGES)
    except openai.APIStatusError as error:
        return type(error), error.status_code, error.body, error.code, error.type, error.param, str(error)
    return None


@pytest.mark.parametrize(("status", "kind"), [(429, openai.RateLimitError), (400, openai.BadRequestError)])
def test_a_replayed_api_error_has_the_recorded_body(traced: Traced, fake: FakeOpenAI, status: int, kind: type) -> None:
    turn = _parse_program(fake, _create)
    fake.script(error=(status, "You exceeded your current quota"))
    records, at, result = _recorded(traced, turn)
    assert result[0] is kind and result[3] == str(status) and result[4] == "invalid_request_error"
    (call,) = [r for r in records if r["name"] == "openai.chat"]
    assert call["metadata"]["error_body"] == result[2]
    sent = len(fake.requests)
    replayed = replay(records, at, turn)
    assert fake.requests[sent:] == []
    assert replayed.result == result  # before: body, code and type None
    (frozen,) = [r for r in _replayed(traced, records) if r["name"] == "openai.chat"]
    assert frozen["metadata"]["error_body"] == result[2]


def test_an_error_body_keeps_its_identifiers_alone_where_content_is_not_captured() -> None:
    from autotrace.integrations.openai._replayed import error_body

    body = {"message": "m", "type": "invalid_request_error", "code": "content_filter", "param": None,
            "innererror": {"content_filter_result": {"prompt": "the user's text"}}}
    http = sys.modules[openai.APIStatusError.__init__.__globals__["__name__"]].__dict__  # the SDK's HTTP library
    http = next(module for name, module in http.items() if name.startswith("httpx") and hasattr(module, "Response"))
    response = http.Response(400, request=http.Request("POST", "http://x"))
    error = openai.BadRequestError("Error code: 400 - m", response=response, body=body)
    assert error_body(error) == {"error_body": body}
    with autotrace.content_capture(False):
        assert error_body(error) == {"error_body": {"message": "m", "type": "invalid_request_error",
                                                    "code": "content_filter"}}
    assert error_body(openai.APIConnectionError(request=response.request)) is None
    assert error_body(ValueError("x")) is None


@pytest.mark.integrations("openai", "langchain")
def test_a_frameworks_replayed_api_error_has_the_recorded_body(traced: Traced, fake: FakeOpenAI) -> None:
    """The generation of LangChain's ``ChatOpenAI`` records the call: it holds the body too."""
    from langchain_openai import ChatOpenAI

    def turn() -> Any:
        llm = ChatOpenAI(model="gpt-4o-mini", base_url=fake.base_url, api_key="k", max_retries=0)
        with autotrace.start_chain("turn"):
            try:
                llm.invoke("hi")
            except openai.RateLimitError as error:
                caught = (error.body, error.code, error.type)
            with autotrace.start_generation("answer", model="m"):
                return caught

    fake.script(error=(429, "You exceeded your current quota"))
    records, at, result = _recorded(traced, turn)
    assert result[1:] == ("429", "invalid_request_error")
    sent = len(fake.requests)
    assert replay(records, at, turn).result == result  # before: (None, None, None)
    assert fake.requests[sent:] == []
