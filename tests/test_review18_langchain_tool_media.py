"""LangChain review 18 (real langchain-core): a tool that returns content blocks with an image (a
screenshot tool) records its result with the image's base64 noted by kind and size, as a message's
media are, not the payload cut at the size limit with the text after it lost."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool

from tests.helpers import Traced

pytestmark = pytest.mark.integrations("langchain")

PNG = base64.b64encode(b"\x89PNG" + bytes(300_000)).decode()  # 400,008 chars
NOTE = f"<base64, {len(PNG)} chars>"


@tool
def screenshot(url: str) -> list[dict[str, Any]]:
    """A screenshot of a web page."""
    return [{"type": "image", "base64": PNG, "mime_type": "image/png"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "text", "text": f"the page at {url}"}]


@tool(response_format="content_and_artifact")
def captured(url: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A screenshot, with where it was taken."""
    return [{"type": "image", "base64": PNG, "mime_type": "image/png"}], {"url": url}


def test_a_tools_image_result_is_noted_as_the_model_that_reads_it_records_it(traced: Traced) -> None:
    call = {"name": "screenshot", "args": {"url": "https://x.test"}, "id": "c1", "type": "tool_call"}
    result = screenshot.invoke(call)
    assert result.content[0]["base64"] == PNG  # the caller's result is untouched
    reader = GenericFakeChatModel(messages=iter([AIMessage(content="a page")]))
    reader.invoke([HumanMessage("look"), AIMessage(content="", tool_calls=[call]), result])
    assert captured.invoke({"name": "captured", "args": {"url": "u"}, "id": "c2", "type": "tool_call"}).artifact == {
        "url": "u"}
    tool_run, generation, with_artifact = traced.records()
    noted = [{"type": "image", "base64": NOTE, "mime_type": "image/png"},
             {"type": "image_url", "image_url": {"url": "<image/png base64, 400030 chars>"}},
             {"type": "text", "text": "the page at https://x.test"}]
    assert (tool_run["name"], tool_run["output"], tool_run["level"]) == ("screenshot", noted, "DEFAULT")
    # the model is told it in OpenAI's form (LangChain converts the image block), noted so too
    assert generation["input"][2] == {"role": "tool", "content": [noted[1], *noted[1:]], "tool_call_id": "c1"}
    assert with_artifact["output"] == {"content": [noted[0]], "artifact": {"url": "u"}}
