"""Inline payloads review 21 found recorded as bytes: a data URL in a Responses tool call's text
``output`` (chat's tool message was noted, Responses' ``function_call_output`` was not), in the text
of a part that is no text part (an Anthropic ``tool_result``'s ``content``), a short payload of
LangChain's standard blocks (``{"type": "image", "base64": ...}``), and an image's address written as
``DATA:...;BASE64,``; and a tool's text that only starts with ``data: `` is no data URL."""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage
from langchain_core.messages.content import create_image_block
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

PAYLOAD = base64.b64encode(b"\x89PNG\r\n" + bytes(range(256)) * 8).decode()  # 2740 chars
URL = "data:image/png;base64," + PAYLOAD
NOTE = f"<image/png base64, {len(URL)} chars>"
SHORT = base64.b64encode(b"\x89PNG" + b"\x01" * 200).decode()  # 272 chars: under the long-string test


def _no_payload(records: list[dict[str, Any]]) -> None:
    for record in records:
        recorded = json.dumps([record["input"], record["output"]])
        assert PAYLOAD[:48] not in recorded and SHORT[8:48] not in recorded, record["name"]


@pytest.mark.integrations("openai")
def test_a_responses_tool_calls_text_output_notes_its_data_url(traced: Traced, client: openai.OpenAI,
                                                               fake: FakeOpenAI) -> None:
    """A screenshot tool whose result is a text with the image's data URL in it, given back as a
    ``function_call_output`` (and a custom tool's ``custom_tool_call_output``)."""
    given: Any = [{"type": "function_call_output", "call_id": "c1", "output": "Screenshot taken: " + URL},
                  {"type": "custom_tool_call_output", "call_id": "c2", "output": URL}]
    client.responses.create(model="gpt-4.1", input=given)
    assert fake.requests[-1]["body"]["input"] == given  # the API got the images
    assert given[0]["output"] == "Screenshot taken: " + URL  # the caller's own, unchanged
    (record,) = traced.records()
    assert record["input"] == [{"type": "function_call_output", "call_id": "c1", "output": "Screenshot taken: " + NOTE},
                               {"type": "custom_tool_call_output", "call_id": "c2", "output": NOTE}]


@pytest.mark.integrations("openai")
def test_an_image_address_in_any_case_is_noted(traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """``DATA:`` (a URL scheme's case is free, as is ``;base64``'s) in an image's address, chat's and
    Responses'."""
    upper, title = "DATA:image/png;BASE64," + PAYLOAD, "Data:image/png;base64," + PAYLOAD
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is it?"}, {"type": "image_url", "image_url": {"url": upper, "detail": "low"}}]}])
    client.responses.create(model="gpt-4.1", input=[{"role": "user", "content": [
        {"type": "input_image", "image_url": title, "detail": "auto"}]}])
    assert fake.requests[0]["body"]["messages"][0]["content"][1]["image_url"]["url"] == upper
    chat, responses = traced.records()
    assert chat["input"] == [{"role": "user", "content": [
        {"type": "text", "text": "what is it?"},
        {"type": "image_url", "image_url": {"url": f"<image/png BASE64, {len(URL)} chars>", "detail": "low"}}]}]
    assert responses["input"] == [{"role": "user", "content": [
        {"type": "input_image", "image_url": NOTE, "detail": "auto"}]}]


@pytest.mark.integrations("langchain")
def test_a_tool_results_text_notes_its_data_url_and_keeps_a_text_starting_with_data(traced: Traced) -> None:
    """Anthropic's ``tool_result`` blocks in a LangChain message: a data URL after the text is noted, the
    text kept; a result that reads ``data: 42`` is the tool's text, not a data URL."""
    model = FakeListChatModel(responses=["a hinge"])
    model.invoke([HumanMessage(content=[
        {"type": "tool_result", "tool_use_id": "t1", "content": "Screenshot taken: " + URL},
        {"type": "tool_result", "tool_use_id": "t2", "content": "data: 42"}])])
    (record,) = traced.records()
    assert record["input"] == [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": "Screenshot taken: " + NOTE},
        {"type": "tool_result", "tool_use_id": "t2", "content": "data: 42"}]}]


@pytest.mark.integrations("langchain")
def test_langchains_standard_blocks_short_base64_is_noted(traced: Traced) -> None:
    """``create_image_block(base64=...)``'s payload however short, in a chain's input and in a tool's
    result (``content_and_artifact``): its ``base64`` field holds nothing else."""
    asked = HumanMessage(content=[{"type": "text", "text": "what is it?"},
                                  create_image_block(base64=SHORT, mime_type="image/png", id="lc_1")])
    RunnableLambda(lambda given: "a hinge", name="step").invoke({"messages": [asked]})

    @tool(response_format="content_and_artifact")
    def screenshot(region: str) -> tuple[list[Any], None]:
        """Take a screenshot of a region."""
        return [create_image_block(base64=SHORT, mime_type="image/png", id="lc_2")], None

    message = screenshot.invoke({"type": "tool_call", "name": "screenshot", "args": {"region": "top"}, "id": "c1"})
    assert message.content[0]["base64"] == SHORT  # the application's own, unchanged
    step, shot = traced.records()
    noted = {"type": "image", "base64": "<base64, 272 chars>", "mime_type": "image/png"}
    assert step["input"] == {"messages": [{"content": [{"type": "text", "text": "what is it?"},
                                                       {**noted, "id": "lc_1"}],
                                           "additional_kwargs": {}, "response_metadata": {}, "type": "human"}]}
    assert shot["output"] == [{"type": "image", "id": "lc_2", "base64": "<base64, 272 chars>", "mime_type": "image/png"}]
    _no_payload([step, shot])


@pytest.mark.integrations("openai")
def test_an_images_note_names_the_format_asked(traced: Traced, client: openai.OpenAI) -> None:
    """The fake answers the ``output_format`` asked, as the API does: a WebP image is noted as one."""
    made = client.images.generate(model="gpt-image-1", prompt="cat", output_format="webp")
    streamed = client.images.edit(model="gpt-image-1", image=("cat.png", b"\x89PNG" * 100, "image/png"),
                                  prompt="make it blue", output_format="jpeg", stream=True)
    last = list(streamed)[-1]
    assert made.output_format == "webp" and last.output_format == "jpeg"
    generated, edited = traced.records()
    size = len(made.data[0].b64_json or "")
    assert generated["output"] == [{"b64_json": f"<image/webp base64, {size} chars>"}]
    assert edited["output"] == [{"b64_json": f"<image/jpeg base64, {len(last.b64_json)} chars>"}]
