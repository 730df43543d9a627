"""LangChain review 21 (real langchain-core): a tool whose result is text holding a base64 data URL
(``Screenshot taken: data:image/png;base64,...``), as a string or as a string or text part of a
list, records it with the data URL noted by kind and size, as the model that reads it records it:
it was recorded in full. The caller's result is untouched; a list of records stays as it is."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import tool

from tests.helpers import Traced

pytestmark = pytest.mark.integrations("langchain")

URL = "data:image/png;base64," + "iVBORw0KGgoAAAANSUhEUgAA" * 400
NOTE = f"<image/png base64, {len(URL)} chars>"


@tool
def screenshot(url: str) -> str:
    """A screenshot of a web page, as text."""
    return f"Screenshot taken: {URL} of {url}"


@tool
def screenshots(url: str) -> list[Any]:
    """Screenshots of a web page, as parts."""
    return [f"first: {URL}", {"type": "text", "text": f"second: {URL}"}]


@tool
def records(query: str) -> list[Any]:
    """Records found, with a page's text."""
    return [{"id": 1, "data": "QUFBQQ==", "text": "a record"}, f"page: {URL}"]


def test_a_data_url_in_a_tools_text_result_is_noted(traced: Traced) -> None:
    assert screenshot.invoke({"url": "u"}) == f"Screenshot taken: {URL} of u"
    call = {"name": "screenshot", "args": {"url": "u"}, "id": "c1", "type": "tool_call"}
    assert screenshot.invoke(call).content == f"Screenshot taken: {URL} of u"
    direct, as_call = traced.records()
    assert direct["output"] == f"Screenshot taken: {NOTE} of u"
    assert as_call["output"] == f"Screenshot taken: {NOTE} of u"


def test_a_data_url_in_a_tools_text_parts_is_noted(traced: Traced) -> None:
    call = {"name": "screenshots", "args": {"url": "u"}, "id": "c1", "type": "tool_call"}
    assert screenshots.invoke(call).content[0] == f"first: {URL}"
    assert traced.one()["output"] == [f"first: {NOTE}", {"type": "text", "text": f"second: {NOTE}"}]


def test_a_tools_records_stay_as_they_are_beside_a_noted_text(traced: Traced) -> None:
    found = records.invoke({"query": "q"})
    assert found == [{"id": 1, "data": "QUFBQQ==", "text": "a record"}, f"page: {URL}"]
    assert traced.one()["output"] == [{"id": 1, "data": "QUFBQQ==", "text": "a record"}, f"page: {NOTE}"]


def test_a_tools_text_without_a_data_url_is_recorded_as_given(traced: Traced) -> None:
    @tool
    def explain(topic: str) -> str:
        """Explains a topic."""
        return "a data URL starts data:image/png;base64,iVBOR and ;base64, marks it"

    explain.invoke({"topic": "data URLs"})
    assert traced.one()["output"] == "a data URL starts data:image/png;base64,iVBOR and ;base64, marks it"
