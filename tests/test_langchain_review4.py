"""Fourth review of the LangChain integration: a spoken or refused ChatOpenAI reply, tool calls whose
arguments are no JSON, token details of audio and of an OpenAI service tier, media inside an
Anthropic ``tool_result`` (and tool arguments beside it), and retrievals that find more than
plain documents. Each test failed on the code before it."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from langchain_openai import ChatOpenAI

from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import Traced

pytestmark = pytest.mark.integrations("langchain", "openai")

AUDIO = base64.b64encode(b"\x00\x01" * 1500).decode()  # 4000 base64 chars
IMAGE = base64.b64encode(b"\x89PNG" * 750).decode()


def _model(fake: FakeOpenAI, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o-audio-preview", base_url=fake.base_url, api_key="sk-test", max_retries=0,
                      **options)


def _generation(traced: Traced, index: int = -1) -> dict[str, Any]:
    return [r for r in traced.records() if r["type"] == "generation"][index]


def test_a_spoken_reply_records_its_transcript_and_a_note_of_its_audio(traced: Traced, fake: FakeOpenAI) -> None:
    fake.script(reply="hello there", audio=AUDIO)
    model = _model(fake, model_kwargs={"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}})
    reply = model.invoke("hi")
    assert reply.content == ""  # ChatOpenAI keeps a spoken reply in additional_kwargs only
    spoken = {**reply.additional_kwargs["audio"], "data": "<base64, 4000 chars>"}
    assert spoken["transcript"] == "hello there"
    assert _generation(traced)["output"] == {"role": "assistant", "content": "", "audio": spoken}
    model.invoke([HumanMessage("hi"), reply, HumanMessage("again")])  # the reply given back, as a next turn
    assert _generation(traced)["input"] == [{"role": "user", "content": "hi"},
                                            {"role": "assistant", "content": "", "audio": spoken},
                                            {"role": "user", "content": "again"}]


def test_a_refusal_is_the_recorded_reply(traced: Traced, fake: FakeOpenAI) -> None:
    fake.script(refusal="I can't help with that")
    reply = _model(fake).invoke("hi")
    assert (reply.content, reply.additional_kwargs) == ("", {"refusal": "I can't help with that"})
    assert _generation(traced)["output"] == {"role": "assistant", "content": "", "refusal": "I can't help with that"}


def test_a_tool_call_whose_arguments_are_no_json_is_recorded(traced: Traced, fake: FakeOpenAI) -> None:
    fake.script(tool_calls=[{"name": "weather", "arguments": '{"city": "Oslo"'}])  # cut off
    reply = _model(fake).invoke("weather in Oslo?")
    assert reply.tool_calls == [] and len(reply.invalid_tool_calls) == 1
    assert _generation(traced)["output"] == {"role": "assistant", "content": "",
                                             "invalid_tool_calls": reply.invalid_tool_calls}
    assert reply.invalid_tool_calls[0]["args"] == '{"city": "Oslo"'


def test_a_flex_tier_reply_keeps_its_cached_and_reasoning_tokens(traced: Traced, fake: FakeOpenAI) -> None:
    fake.script(usage=(11, 7), cached_tokens=3, reasoning_tokens=2, service_tier="flex")
    reply = _model(fake, service_tier="flex").invoke("hi")
    assert reply.usage_metadata["input_token_details"]["flex_cache_read"] == 3  # ChatOpenAI's key for the tier
    assert _generation(traced)["usage"] == {"input": 11, "output": 7, "total": 18, "input_cached_tokens": 3,
                                            "output_reasoning_tokens": 2}


def test_audio_token_details_are_audio_usage(traced: Traced) -> None:
    usage = {"input_tokens": 100, "output_tokens": 50, "total_tokens": 150,
             "input_token_details": {"audio": 20, "cache_read": 3},
             "output_token_details": {"audio": 30, "reasoning": 2}}
    GenericFakeChatModel(messages=iter([AIMessage("ok", usage_metadata=usage)])).invoke("hi")
    assert _generation(traced)["usage"] == {"input": 100, "output": 50, "total": 150, "input_cached_tokens": 3,
                                            "input_audio_tokens": 20, "output_reasoning_tokens": 2,
                                            "output_audio_tokens": 30}


def test_an_image_in_a_tool_result_is_noted_and_tool_arguments_are_kept(traced: Traced) -> None:
    call = {"type": "tool_use", "id": "t1", "name": "save", "input": {"data": "hello", "file_data": "notes.txt"}}
    result = {"type": "tool_result", "tool_use_id": "t1", "content": [
        {"type": "text", "text": "the chart"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": IMAGE}}]}
    messages = [HumanMessage("save and plot"), AIMessage([call]), HumanMessage([result])]
    GenericFakeChatModel(messages=iter([AIMessage("done")])).invoke(messages)
    noted = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "<base64, 4000 chars>"}}
    assert _generation(traced)["input"] == [
        {"role": "user", "content": "save and plot"},
        {"role": "assistant", "content": [call]},  # its argument ``data`` is no payload
        {"role": "user", "content": [{**result, "content": [result["content"][0], noted]}]}]


class _LooseRetriever(BaseRetriever):
    """A retriever returning what its search gave: text, and a document with its score."""

    def _get_relevant_documents(self, query: str, *, run_manager: Any = None) -> list[Any]:
        return ["plain text hit", (Document("scored", id="d1"), 0.9)]


def test_a_retriever_returning_text_and_scored_pairs_records_their_content(traced: Traced) -> None:
    assert len(_LooseRetriever().invoke("q")) == 2
    (retrieval,) = traced.records()
    assert retrieval["output"] == [{"id": None, "content": "plain text hit"},
                                   {"id": "d1", "content": "scored", "score": 0.9}]
    assert (retrieval["doc_count"], retrieval["metadata"]["scores"]) == (2, [0.9])


class _NumpyStore(VectorStore):
    """A store whose scores are numpy's, as FAISS gives them."""

    def add_texts(self, texts: Any, metadatas: Any = None, **kwargs: Any) -> list[str]:
        return []

    @classmethod
    def from_texts(cls, texts: Any, embedding: Any, metadatas: Any = None, **kwargs: Any) -> _NumpyStore:
        return cls()

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k)]

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[Document, Any]]:
        DeterministicFakeEmbedding(size=4).embed_query(query)
        return [(Document("near", id="n1"), np.float32(0.5))]


def test_a_store_search_keeps_numpy_scores(traced: Traced) -> None:
    _NumpyStore().similarity_search_with_score("q", k=1)
    search = next(r for r in traced.records() if r["type"] == "retriever")
    assert search["output"] == [{"id": "n1", "content": "near", "score": 0.5}]
    assert search["metadata"]["scores"] == [0.5]
