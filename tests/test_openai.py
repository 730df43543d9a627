"""OpenAI auto-instrumentation against the real SDK over HTTP to a loopback fake server."""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path
from types import FunctionType
from typing import Any

import openai
import pytest
from opentelemetry import trace

import autotrace
from autotrace.integrations import openai as openai_integration
from autotrace.integrations.openai import _extract
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("openai")

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "where is my order"}]


def _only(traced: Traced) -> dict[str, Any]:
    (record,) = traced.records()
    return record


def test_chat_completion_records_every_field(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply="It ships today.", usage=(120, 30), model="gpt-4o-mini-2024-07-18", cached_tokens=20,
                reasoning_tokens=4)
    response = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2, seed=7)
    assert response.choices[0].message.content == "It ships today."
    record = _only(traced)
    assert (record["type"], record["name"]) == ("generation", "openai.chat")
    assert record["model"] == "gpt-4o-mini-2024-07-18"
    assert record["metadata"]["provider"] == "127.0.0.1"
    port = fake.base_url.rsplit(":", 1)[1]
    assert record["metadata"]["base_url"] == f"http://<IP_ADDRESS>:{port}/"  # redacted like any IP address
    assert record["model_parameters"] == {"temperature": 0.2, "seed": 7}
    assert record["input"] == MESSAGES
    assert record["output"] == {"role": "assistant", "content": "It ships today."}
    assert record["metadata"]["finish_reason"] == "stop"
    assert record["usage"] == {"input": 120, "output": 30, "total": 150, "input_cached_tokens": 20,
                               "output_reasoning_tokens": 4}
    assert record["cost"] == pytest.approx({"input": (100 * 0.15 + 20 * 0.075) / 1e6, "output": 30 * 0.60 / 1e6,
                                            "total": (100 * 0.15 + 20 * 0.075 + 30 * 0.60) / 1e6})
    assert fake.requests[-1]["body"].get("stream_options") is None


def test_the_provider_follows_a_changed_base_url(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """The provider is cached on the client, keyed by its URL object: setting ``base_url`` (which
    stores a new one) is seen by the next call."""
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client.base_url = fake.base_url.replace("127.0.0.1", "localhost")
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    first, second = traced.records()
    assert (first["metadata"]["provider"], second["metadata"]["provider"]) == ("127.0.0.1", "localhost")
    port = fake.base_url.rsplit(":", 1)[1]
    assert second["metadata"]["base_url"] == f"http://localhost:{port}/"


def test_tool_calls_in_the_output(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(tool_calls=[{"name": "lookup_order", "arguments": '{"id": 7}'}])
    tools = [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}]
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=tools)
    record = _only(traced)
    assert record["output"]["tool_calls"] == [
        {"id": "call_0", "type": "function", "function": {"name": "lookup_order", "arguments": '{"id": 7}'}}
    ]
    assert record["metadata"]["finish_reason"] == "tool_calls"
    assert record["model_parameters"] == {"tools": ["lookup_order"]}


def test_unknown_model_records_usage_but_no_cost(traced: Traced, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="my-local-llama", messages=MESSAGES)
    record = _only(traced)
    assert record["usage"]["total"] > 0 and record["cost"] is None


def test_price_table_can_be_overridden(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    openai_integration.set_prices({"my-local-llama": (1.0, 0.5, 2.0)})
    fake.script(usage=(1_000_000, 1_000_000))
    client.chat.completions.create(model="my-local-llama", messages=MESSAGES)
    assert _only(traced)["cost"] == {"input": 1.0, "output": 2.0, "total": 3.0}


def test_responses_completions_and_embeddings(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(reply="fine", usage=(10, 2), cached_tokens=3, reasoning_tokens=1)
    assert client.responses.create(model="gpt-4.1", input="hello", instructions="short").output_text == "fine"
    client.completions.create(model="gpt-3.5-turbo-instruct", prompt="say hi", max_tokens=5)
    embedded = client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"], dimensions=4)
    assert len(embedded.data) == 3
    by_name = {r["name"]: r for r in traced.records()}
    responses = by_name["openai.responses"]
    assert responses["input"] == {"instructions": "short", "input": "hello"}
    assert responses["output"] == "fine"
    assert responses["usage"] == {"input": 10, "output": 2, "total": 12, "input_cached_tokens": 3,
                                  "output_reasoning_tokens": 1}
    completion = by_name["openai.completions"]
    assert completion["input"] == "say hi" and completion["output"] == "echo: say hi"
    assert completion["model_parameters"] == {"max_tokens": 5}
    embedding = by_name["openai.embeddings"]
    assert embedding["type"] == "embedding" and embedding["input"] == ["a", "b", "c"]
    assert embedding["metadata"]["input_count"] == 3 and embedding["metadata"]["dimensions"] == 4
    assert set(embedding["usage"]) == {"input", "total"}


def test_async_client(traced: Traced, aclient: openai.AsyncOpenAI) -> None:
    async def call() -> str:
        response = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return response.choices[0].message.content

    assert asyncio.run(call()) == "echo: where is my order"
    record = _only(traced)
    assert record["name"] == "openai.chat" and record["output"]["content"] == "echo: where is my order"


def test_with_raw_response_returns_the_same_type(traced: Traced, client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    autotrace.uninstall()
    bare = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert type(raw) is type(bare)
    assert raw.parse().choices[0].message.content == bare.parse().choices[0].message.content
    store = autotrace.export.local_store.LocalStore(traced.path)
    (record,) = store.observations()
    assert record["output"]["content"] == "echo: where is my order"


def test_azure_records_the_provider(traced: Traced, fake: FakeOpenAI) -> None:
    azure = openai.AzureOpenAI(azure_endpoint=fake.root_url, api_version="2024-06-01", api_key="x", max_retries=0)
    azure.chat.completions.create(model="my-deployment", messages=MESSAGES)
    record = _only(traced)
    assert record["metadata"]["provider"] == "azure"
    assert fake.requests[-1]["path"] == "/openai/deployments/my-deployment/chat/completions"


@pytest.mark.parametrize(("status", "error_type"), [(400, openai.BadRequestError), (500, openai.InternalServerError)])
def test_api_errors_reach_the_caller_unchanged(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI,
                                               status: int, error_type: type[Exception]) -> None:
    fake.script(error=(status, "model is sad"))
    with pytest.raises(error_type) as raised:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert raised.value.status_code == status
    record = _only(traced)
    assert record["level"] == "ERROR" and "model is sad" in record["status_message"]


def test_timeout_ends_as_error(traced: Traced, fake: FakeOpenAI) -> None:
    fake.delay(1.0)
    slow = openai.OpenAI(base_url=fake.base_url, api_key="k", max_retries=0, timeout=0.1)
    with pytest.raises(openai.APITimeoutError):
        slow.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    fake.delay(0)
    record = _only(traced)
    assert record["level"] == "ERROR" and record["status_message"].startswith("APITimeoutError")


def test_content_capture_off_globally_and_per_block(tmp_path: Path, client: openai.OpenAI) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "c.db", integrations=("openai",),
                      export_interval=0.05, capture_content=False)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    autotrace.install(local_store="on", local_store_path=tmp_path / "d.db", integrations=("openai",),
                      export_interval=0.05)
    with autotrace.content_capture(False):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert autotrace.flush(5)
    first = autotrace.export.local_store.LocalStore(tmp_path / "c.db").observations()
    later = sorted(autotrace.local_store().observations(), key=lambda r: r["start_ns"])
    assert [(r["input"], r["output"]) for r in first] == [(None, None)]
    assert first[0]["usage"]["total"] > 0
    assert (later[0]["input"], later[0]["output"]) == (None, None)
    assert later[1]["input"] == MESSAGES


def test_an_outer_generation_owns_the_call_and_is_enriched(traced: Traced, client: openai.OpenAI,
                                                           fake: FakeOpenAI) -> None:
    fake.script(usage=(11, 4))
    with autotrace.start_chain("chain"), autotrace.start_generation("framework-llm", model="gpt-4o"):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    records = traced.records()
    assert shape(records) == [("chain", "chain", [("generation", "framework-llm", [])])]
    framework = next(r for r in records if r["name"] == "framework-llm")
    assert framework["usage"]["total"] == 15 and framework["metadata"]["finish_reason"] == "stop"


def test_a_foreign_gen_ai_span_owns_the_call(traced: Traced, client: openai.OpenAI) -> None:
    tracer = trace.get_tracer("other.openai.instrumentor")
    with tracer.start_as_current_span("chat gpt-4o", attributes={"gen_ai.operation.name": "chat"}):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert shape(traced.records()) == [("generation", "chat gpt-4o", [])]


def test_a_wrapper_bug_never_changes_the_result(traced: Traced, client: openai.OpenAI,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("extractor bug")

    monkeypatch.setattr(_extract, "response_fields", broken)
    response = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert response.choices[0].message.content == "echo: where is my order"
    monkeypatch.setattr(_extract, "request_fields", broken)
    response = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert response.choices[0].message.content == "echo: where is my order"
    # the first call is still traced, without the fields that failed; the second's observation, started
    # before its request fields failed, is ended with what it had (never left open)
    record, second = traced.records()
    assert record["input"] == MESSAGES and record["output"] is None and record["usage"] is None
    assert (second["name"], second["input"], second["output"]) == ("openai.chat", None, None)
    assert autotrace.stats()["internal_errors.deferred_fields"] == 1
    assert autotrace.stats()["internal_errors.openai.prepare"] == 1


def test_a_changed_request_signature_disables_only_that_patch(tmp_path: Path, client: openai.OpenAI,
                                                              aclient: openai.AsyncOpenAI,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """A future SDK whose sync ``request`` takes its arguments in another order: autotrace leaves
    it unwrapped (one warning, counted), the call works exactly as without autotrace, and the
    async client, still shaped as before, stays traced."""
    from openai._base_client import SyncAPIClient
    from openai._models import FinalRequestOptions

    original = SyncAPIClient.request

    def request(self: Any, options: Any, cast_to: Any, *, stream: bool = False, stream_cls: Any = None) -> Any:
        return original(self, cast_to, options, stream=stream, stream_cls=stream_cls)

    def post(self: Any, path: str, *, cast_to: Any, body: Any = None, options: Any = None, stream: bool = False,
             stream_cls: Any = None, **_: Any) -> Any:
        final = FinalRequestOptions.construct(method="post", url=path, json_data=body, **(options or {}))
        return self.request(final, cast_to, stream=stream, stream_cls=stream_cls)

    monkeypatch.setattr(SyncAPIClient, "request", request)
    monkeypatch.setattr(SyncAPIClient, "post", post)
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("openai",),
                          export_interval=0.05)
    assert caplog.text.count("cannot patch openai._base_client.SyncAPIClient.request (its parameters changed)") == 1
    assert autotrace.stats()["integration_patch_skipped.openai"] == 1
    assert not hasattr(SyncAPIClient.request, "__wrapped__")

    response = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert response.choices[0].message.content == "echo: where is my order"
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == \
        "echo: where is my order"
    asyncio.run(aclient.chat.completions.create(model="gpt-4o", messages=MESSAGES))
    records = Traced(tmp_path / "t.db").records()
    assert [(r["type"], r["name"]) for r in records] == [("generation", "openai.chat")]  # the async call only
    assert "internal_errors.openai.prepare" not in autotrace.stats()


def test_an_integration_failing_partway_leaves_the_sdk_unpatched(tmp_path: Path, client: openai.OpenAI,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A future SDK without ``AsyncStream``: the integration fails after wrapping the clients'
    ``request``; those patches are undone (counted, logged once), and calls work untraced."""
    from openai import _streaming
    from openai._base_client import AsyncAPIClient, SyncAPIClient

    monkeypatch.delattr(_streaming, "AsyncStream")
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("openai",),
                      export_interval=0.05)
    assert autotrace.stats()["integration_failed.openai"] == 1
    assert not hasattr(SyncAPIClient.request, "__wrapped__")
    assert not hasattr(AsyncAPIClient.request, "__wrapped__")
    response = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert response.choices[0].message.content == "echo: where is my order"
    assert autotrace.flush(5) and autotrace.local_store().observations() == []


def test_uninstall_restores_the_sdk(traced: Traced, client: openai.OpenAI) -> None:
    from openai import AsyncStream, Stream
    from openai._base_client import AsyncAPIClient, SyncAPIClient

    assert hasattr(SyncAPIClient.request, "__wrapped__") and hasattr(Stream.__iter__, "__wrapped__")
    autotrace.uninstall()
    assert not hasattr(SyncAPIClient.request, "__wrapped__")
    assert not hasattr(AsyncAPIClient.request, "__wrapped__")
    for method in (Stream.__iter__, Stream.__next__, Stream.close, AsyncStream.__aiter__, AsyncStream.__anext__,
                   AsyncStream.close):
        assert type(method) is FunctionType and method.__module__ == "openai._streaming"
    autotrace.install(local_store="on", local_store_path=traced.path.with_name("u.db"), integrations=(),
                      export_interval=0.05)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert autotrace.flush(5) and autotrace.local_store().observations() == []


def test_streams_are_collected_after_gc(traced: Traced, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    assert len(traced.records()) == 1
