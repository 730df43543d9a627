"""The provider of a call is the service the client talks to: OpenAI's regional hosts (the
client's ``data_residency``, ``eu.api.openai.com`` ...) are OpenAI, not a compatible server named
after its host; a client made with one of the SDK's providers (``openai.providers.vertex``,
``bedrock``) is that provider, not the host of its region's endpoint. Real SDK over HTTP."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest
from openai.providers import vertex

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")

REPLY: dict[str, Any] = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-11-20",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}


@pytest.mark.parametrize("region", ["eu", "jp", "us"])
def test_a_client_with_data_residency_calls_openai(traced: Traced, region: str) -> None:
    hosts: list[str] = []

    def reply(request: httpx2.Request) -> httpx2.Response:
        hosts.append(request.url.host)
        return httpx2.Response(200, json=REPLY)

    with openai.OpenAI(api_key="k", data_residency=region, max_retries=0,  # type: ignore[arg-type]
                       http_client=httpx2.Client(transport=httpx2.MockTransport(reply))) as client:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    record = traced.one()
    assert hosts == [f"{region}.api.openai.com"]
    assert (record["metadata"]["provider"], record["metadata"]["base_url"]) == (
        "openai", f"https://{region}.api.openai.com/v1/")
    assert record["cost"] == {"input": 1.25e-05, "output": 1e-05, "total": 2.25e-05}


def test_a_client_made_with_an_sdk_provider_is_that_provider(traced: Traced, fake: FakeOpenAI) -> None:
    root = f"{fake.root_url}/v1/projects/p/locations/us-central1/publishers/openai/v1"
    with openai.OpenAI(provider=vertex(base_url=root, token_provider=lambda: "token"), max_retries=0) as client:
        assert client.responses.create(model="gpt-4o", input="hi").output_text == "echo: hi"
    record = traced.one()
    assert fake.requests[-1]["headers"]["authorization"] == "Bearer token"
    assert (record["name"], record["metadata"]["provider"]) == ("openai.responses", "vertex")
    assert record["metadata"]["base_url"].endswith("/v1/projects/p/locations/us-central1/publishers/openai/v1/")
