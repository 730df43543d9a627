"""A reranker in a query engine (real llama-index-core): given the query, it recorded neither how
many candidates it was given nor how many it keeps; only a reranker called without a query had
its ``metadata.input_count``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor import SimilarityPostprocessor
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import NodeWithScore

from tests.helpers import Traced, shape

pytestmark = pytest.mark.integrations("llama_index")


class KeepBest(BaseNodePostprocessor):
    """A reranker keeping its ``top_n`` best, as LLMRerank, SentenceTransformerRerank, CohereRerank do."""

    top_n: int = 1

    def _postprocess_nodes(self, nodes: list[NodeWithScore], query_bundle: Any = None) -> list[NodeWithScore]:
        return nodes[: self.top_n]


def _engine() -> Any:
    docs = [Document(text=f"doc {i}", doc_id=f"d{i}") for i in range(4)]
    index = VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))
    return index.as_query_engine(llm=MockLLM(max_tokens=2), similarity_top_k=3,
                                 node_postprocessors=[SimilarityPostprocessor(similarity_cutoff=-1.0), KeepBest()])


def _reranks(records: list[dict]) -> list[tuple]:
    return [(r["name"], r["input"], r["top_k"], r["metadata"]["input_count"], r["doc_count"])
            for r in records if r["metadata"].get("operation") == "rerank"]


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_reranker_records_its_candidates_and_top_n(traced: Traced, asynchronous: bool) -> None:
    engine = _engine()
    response = asyncio.run(engine.aquery("doc 1")) if asynchronous else engine.query("doc 1")
    assert len(response.source_nodes) == 1
    records = [r for r in traced.records() if r["name"] != "MockEmbedding.get_text_embedding_batch"]
    a = "a" if asynchronous else ""
    assert shape(records) == [("chain", f"RetrieverQueryEngine.{a}query", [
        ("retriever", f"VectorIndexRetriever.{a}retrieve", [("embedding", f"MockEmbedding.{a}get_query_embedding", [])]),
        ("retriever", f"SimilarityPostprocessor.{a}postprocess_nodes", []),
        ("retriever", f"KeepBest.{a}postprocess_nodes", []),
        ("chain", f"CompactAndRefine.{a}synthesize", [("generation", f"MockLLM.{a}complete", [])])])]
    assert _reranks(records) == [(f"SimilarityPostprocessor.{a}postprocess_nodes", "doc 1", None, 3, 3),
                                 (f"KeepBest.{a}postprocess_nodes", "doc 1", 1, 3, 1)]
