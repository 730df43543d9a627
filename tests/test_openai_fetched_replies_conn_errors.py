"""OpenAI calls as a demanding user makes them: a Responses stream of a refusal read in
part, background responses fetched later (``retrieve``, ``cancel``), connection failures, the
embeddings format the SDK picks, and the client's variants (``with_options``, raw responses).
The caller gets what the SDK alone would give; the record says what happened."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import openai
import pytest

import autotrace
from autotrace.integrations.openai import _background
from autotrace.observation import STREAM_CLOSED
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

REFUSAL = "I can't help with that request."



# -- 1. a Responses stream of a refusal, read in part ------------------------------------------------
@pytest.mark.parametrize("how", ["break", "close"])
def test_a_responses_refusal_read_in_part_keeps_what_was_streamed(traced: Traced, client: openai.OpenAI,
                                                                  fake: FakeOpenAI, how: str) -> None:
    fake.script(refusal=REFUSAL, chunks=4)
    stream = client.responses.create(model="gpt-4.1", input="where", stream=True)
    pieces = []
    for event in stream:
        if event.type == "response.refusal.delta":
            pieces.append(event.delta)
            if len(pieces) == 2:
                break
    if how == "close":
        stream.close()
    else:
        del stream  # dropped: ends when the collector frees it
    record = traced.one()
    assert pieces == ["I can't", " help wi"]
    assert record["output"] == [{"type": "message", "role": "assistant", "status": "in_progress",
                                 "content": [{"type": "refusal", "refusal": "I can't help wi"}]}]
    assert (record["level"], record["status_message"]) == ("WARNING", STREAM_CLOSED)
    assert record["completion_start_time"] is not None and record["usage"] is None


def test_a_responses_refusal_read_to_the_end_is_the_final_responses_output(traced: Traced, client: openai.OpenAI,
                                                                          fake: FakeOpenAI) -> None:
    fake.script(refusal=REFUSAL, chunks=4, usage=(12, 6))
    assert [e.type for e in client.responses.create(model="gpt-4.1", input="x", stream=True)][-1] == (
        "response.completed")
    record = traced.one()
    assert record["output"] == [{"id": "msg_fake", "type": "message", "role": "assistant", "status": "completed",
                                 "content": [{"type": "refusal", "refusal": REFUSAL}]}]
    assert (record["level"], record["usage"]["total"]) == ("DEFAULT", 18)


# -- 2. background responses: one generation when a fetch finds the reply finished -----------------------
def _by_name(traced: Traced) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in traced.records():
        found.setdefault(record["name"], []).append(record)
    return found


def test_a_background_responses_reply_is_one_generation_in_the_creating_trace(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """Polled until done: the polls that find it running record nothing, the first that finds it
    finished records its output, usage and cost under the generation that created it, with that
    call's tenant; later fetches record nothing."""
    fake.background_polls = 2
    fake.script(reply="shipped on Monday", usage=(1000, 100), model="gpt-4.1-2025-04-14")
    with autotrace.tenant("acme"), autotrace.start_span("checkout") as root:
        queued = client.responses.create(model="gpt-4.1", input="where is it", background=True)
    statuses = [client.responses.retrieve(queued.id).status for _ in range(4)]  # polled outside the request
    assert (queued.status, statuses) == ("queued", ["in_progress", "in_progress", "completed", "completed"])
    assert client.responses.retrieve(queued.id).output_text == "shipped on Monday"
    found = _by_name(traced)
    assert sorted(found) == ["checkout", "openai.responses", "openai.responses.background"]
    (creating,), (finished,) = found["openai.responses"], found["openai.responses.background"]
    assert (creating["usage"], creating["metadata"]["finish_reason"]) == (None, "queued")
    assert (finished["type"], finished["trace_id"], finished["parent_id"]) == ("generation", root.trace_id,
                                                                              creating["id"])
    assert (finished["tenant"], finished["model"], finished["output"], finished["level"]) == (
        "acme", "gpt-4.1-2025-04-14", "shipped on Monday", "DEFAULT")
    assert finished["usage"] == {"input": 1000, "output": 100, "total": 1100, "input_cached_tokens": 0,
                                 "output_reasoning_tokens": 0}
    assert finished["cost"] == pytest.approx({"input": 0.002, "output": 0.0008, "total": 0.0028})
    assert finished["metadata"]["finish_reason"] == "completed"
    assert finished["metadata"]["response_id"] == queued.id == "resp_bg_1"
    assert finished["metadata"]["provider"] == creating["metadata"]["provider"]
    assert creating["start_ns"] < finished["start_ns"] <= creating["end_ns"] and finished["end_ns"] > finished["start_ns"]
    assert [r["path"] for r in fake.requests] == ["/v1/responses"] + ["/v1/responses/resp_bg_1"] * 5


@pytest.mark.parametrize("final", ["failed", "incomplete"])
def test_a_background_response_that_ends_badly_is_recorded_with_its_status(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI, final: str) -> None:
    fake.background_polls = 0
    fake.script(reply="partial", status=final)
    queued = client.responses.create(model="gpt-4.1", input="x", background=True)
    assert client.responses.retrieve(queued.id).status == final
    (finished,) = _by_name(traced)["openai.responses.background"]
    assert finished["metadata"]["finish_reason"] == final
    if final == "failed":
        assert (finished["level"], finished["status_message"], finished["output"]) == (
            "ERROR", "The model failed.", None)
    else:
        assert (finished["level"], finished["output"]) == ("DEFAULT", "partial")


def test_a_cancelled_background_response_is_one_generation(traced: Traced, client: openai.OpenAI,
                                                            fake: FakeOpenAI) -> None:
    fake.background_polls = 5
    queued = client.responses.create(model="gpt-4.1", input="x", background=True)
    assert client.responses.retrieve(queued.id).status == "in_progress"
    assert client.responses.cancel(queued.id).status == "cancelled"
    assert client.responses.retrieve(queued.id).status == "cancelled"
    (finished,) = _by_name(traced)["openai.responses.background"]
    assert (finished["metadata"]["finish_reason"], finished["usage"], finished["output"]) == ("cancelled", None, None)


def test_fetching_a_response_not_created_here_records_nothing(traced: Traced, fake: FakeOpenAI) -> None:
    """A response another process created (here: before autotrace was installed)."""
    autotrace.uninstall()
    plain = openai.OpenAI(base_url=fake.base_url, api_key="x", max_retries=0)
    fake.background_polls = 0
    queued = plain.responses.create(model="gpt-4.1", input="x", background=True)
    autotrace.install(local_store="on", local_store_path=traced.path, integrations=("openai",), export_interval=0.05)
    plain.responses.create(model="gpt-4.1", input="y", background=True)  # one remembered: fetches are watched
    assert plain.responses.retrieve(queued.id).status == "completed"
    assert sorted(_by_name(traced)) == ["openai.responses"]


def test_a_background_response_fetched_by_an_async_client_in_another_thread(
        traced: Traced, client: openai.OpenAI, aclient: openai.AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.background_polls = 1
    with autotrace.tenant("acme"):
        queued = client.responses.create(model="gpt-4.1", input="x", background=True)

    async def poll() -> list[str]:
        return [(await aclient.responses.retrieve(queued.id)).status for _ in range(2)]

    statuses: list[str] = []
    worker = threading.Thread(target=lambda: statuses.extend(asyncio.run(poll())))
    worker.start()
    worker.join()
    assert statuses == ["in_progress", "completed"]
    (creating,), (finished,) = _by_name(traced).values()
    assert (finished["name"], finished["parent_id"], finished["trace_id"], finished["tenant"]) == (
        "openai.responses.background", creating["id"], creating["trace_id"], "acme")


def test_background_responses_remembered_are_bounded(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_background, "MAX_PENDING", 2)
    fake.background_polls = 0
    ids = [client.responses.create(model="gpt-4.1", input="x", background=True).id for _ in range(3)]
    assert [client.responses.retrieve(i).status for i in ids] == ["completed"] * 3
    finished = _by_name(traced)["openai.responses.background"]
    assert [r["metadata"]["response_id"] for r in finished] == ids[1:]  # the oldest was forgotten
    assert autotrace.stats()["openai.background_forgotten"] == 1


# -- 3. a connection failure's status says what failed -------------------------------------------------
def _unused_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return int(unused.getsockname()[1])


def test_a_refused_connections_status_gives_its_cause(traced: Traced) -> None:
    port = _unused_port()
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIConnectionError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert type(raised.value) is openai.APIConnectionError and str(raised.value) == "Connection error."
    assert type(raised.value.__cause__).__name__ == "ConnectError"
    record = traced.one()
    assert (record["level"], record["status_message"]) == (
        "ERROR", "APIConnectionError: Connection error. Cause: ConnectError: [Errno 111] Connection refused "
                 f"(<IP_ADDRESS>:{port})")  # the store redacts addresses


def test_a_timeouts_status_gives_its_cause_bounded(traced: Traced, fake: FakeOpenAI) -> None:
    fake.delay(0.5)
    slow = openai.OpenAI(base_url=fake.base_url, api_key="x", max_retries=0, timeout=0.05)
    with pytest.raises(openai.APITimeoutError) as raised:
        slow.embeddings.create(model="text-embedding-3-small", input="x")
    assert str(raised.value) == "Request timed out."
    assert traced.one()["status_message"] == (
        f"APITimeoutError: Request timed out. Cause: ReadTimeout: timed out (<IP_ADDRESS>:{fake.port})")


def test_a_long_cause_is_cut() -> None:
    from autotrace.integrations.openai._replayed import with_cause

    request = openai.OpenAI(api_key="x").embeddings._client._client.build_request("POST", "https://api.test/v1/x")
    error = openai.APIConnectionError(request=request)
    error.__cause__ = OSError("x" * 1000)
    assert with_cause(error) == f"APIConnectionError: Connection error. Cause: OSError: {'x' * 288}... (api.test)"
    assert with_cause(openai.APIError("boom", request, body=None)) is None


def test_a_replayed_connection_error_has_the_sdks_message_alone() -> None:
    from autotrace.integrations.openai._replayed import replayed_error
    from autotrace.interception import RecordedError

    client = openai.OpenAI(api_key="x", base_url="http://llm.test/v1")
    options = openai._models.FinalRequestOptions.construct(method="post", url="/chat/completions")
    recorded = RecordedError.of("APIConnectionError: Connection error. Cause: ConnectError: refused (llm.test:80)")
    error = replayed_error(recorded, client, options)
    assert (type(error), str(error)) == (openai.APIConnectionError, "Connection error.")


# -- 4. embeddings: the format the caller asked for, not the SDK's default ----------------------------------
def test_embeddings_record_only_the_format_the_caller_gave(traced: Traced, client: openai.OpenAI,
                                                           fake: FakeOpenAI) -> None:
    default = client.embeddings.create(model="text-embedding-3-small", input="a b", dimensions=4)
    client.embeddings.create(model="text-embedding-3-small", input="a b", encoding_format="float")
    client.embeddings.create(model="text-embedding-3-small", input="a b", encoding_format="base64")
    client.embeddings.create(model="text-embedding-3-small", input="a b", extra_body={"encoding_format": "float"})
    assert isinstance(default.data[0].embedding, list) and len(default.data[0].embedding) == 4
    assert [r["body"].get("encoding_format") for r in fake.requests] == ["base64", "float", "base64", "float"]
    assert [r.get("model_parameters") for r in traced.records()] == [
        {"dimensions": 4}, {"encoding_format": "float"}, {"encoding_format": "base64"}, {"encoding_format": "float"}]


async def test_async_embeddings_record_only_the_format_the_caller_gave(traced: Traced,
                                                                       aclient: openai.AsyncOpenAI) -> None:
    await aclient.embeddings.create(model="text-embedding-3-small", input="a")
    await aclient.with_raw_response.embeddings.create(model="text-embedding-3-small", input="a",
                                                      encoding_format="base64")
    assert [r.get("model_parameters") for r in traced.records()] == [None, {"encoding_format": "base64"}]


# -- 5. the client's other model calls ---------------------------------------------------------------------
def test_a_conversation_compacted_is_one_generation_with_its_usage(traced: Traced, client: openai.OpenAI) -> None:
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    compacted = client.responses.compact(model="gpt-5.1", input=conversation)
    assert compacted.output[-1].type == "compaction"
    record = traced.one()
    assert (record["type"], record["name"], record["model"], record["level"]) == (
        "generation", "openai.responses.compact", "gpt-5.1", "DEFAULT")
    assert record["input"] == conversation
    assert record["usage"] == {"input": 11, "output": 12, "total": 23, "input_cached_tokens": 0,
                               "output_reasoning_tokens": 0}
    assert [item["type"] for item in record["output"]] == ["message", "compaction"]
