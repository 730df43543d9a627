"""A legacy completion of several prompts (``prompt=[...]``) answers one choice per prompt: streamed,
their pieces come interleaved, and were recorded joined into one text. Real SDK over HTTP to the
loopback fake."""

from __future__ import annotations

import openai
import pytest

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("openai")


def test_a_streamed_completion_of_several_prompts_records_one_text_per_prompt(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.script(usage=(6, 8), chunks=2)
    stream = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=["hello", "bye"], stream=True)
    texts: dict[int, str] = {}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
    assert texts == {0: "echo: hello", 1: "echo: bye"}
    fake.script(usage=(6, 8))
    whole = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=["hello", "bye"])
    assert [choice.text for choice in whole.choices] == ["echo: hello", "echo: bye"]
    fake.script(usage=(3, 4), chunks=2)
    one = "".join(c.choices[0].text for c in client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="hello", stream=True) if c.choices)
    streamed, answered, single = traced.records()
    assert streamed["output"] == answered["output"] == ["echo: hello", "echo: bye"]
    assert (streamed["level"], streamed["metadata"]["finish_reason"], streamed["usage"]) == (
        "DEFAULT", "stop", {"input": 6, "output": 8, "total": 14})
    assert single["output"] == one == "echo: hello"


def test_a_streamed_completion_of_several_prompts_left_early_is_interrupted(
        traced: Traced, client: openai.OpenAI, fake: FakeOpenAI) -> None:
    """The first prompt's choice finished, the second's not: the reply had not finished."""
    fake.script(chunks=2)
    stream = client.completions.create(model="gpt-3.5-turbo-instruct", prompt=["hello", "bye"], stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].finish_reason:
            break
    stream.close()
    record = traced.one()
    assert (record["level"], record["output"]) == ("WARNING", ["echo: hello", "echo: bye"])
