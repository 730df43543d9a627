"""A LlamaIndex retrieval (real llama-index-core, MockEmbedding) records each node's metadata with
its id, score and text: which file, page or section a chunk came from is what a reader of a RAG
trace looks for (the node id is a random UUID). Metadata is bounded as the content is: the first
keys, each value cut short (a sentence window's ``window`` holds kilobytes of text)."""

from __future__ import annotations

import pytest
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.embeddings.mock_embed_model import MockEmbedding
from llama_index.core.postprocessor import SimilarityPostprocessor
from llama_index.core.schema import TextNode

from tests.helpers import Traced

pytestmark = pytest.mark.integrations("llama_index")


def test_retrieved_and_reranked_nodes_record_their_metadata_bounded(traced: Traced) -> None:
    previous = Settings._embed_model
    Settings.embed_model = MockEmbedding(embed_dim=8)
    try:
        wide = {f"k{i:02}": i for i in range(30)}
        nodes = [TextNode(id_="n1", text="Orders ship in 24 hours.",
                          metadata={"file_name": "shipping.pdf", "page_label": "3", "window": "w" * 5000,
                                    "tags": ["faq", "orders"], "year": 2024, "draft": False}),
                 TextNode(id_="n2", text="Refunds take five days.", metadata=wide),
                 TextNode(id_="n3", text="No metadata here.")]
        retriever = VectorStoreIndex(nodes).as_retriever(similarity_top_k=3)
        found = retriever.retrieve("when do orders ship?")
        SimilarityPostprocessor(similarity_cutoff=0.0).postprocess_nodes(found, query_str="q")
    finally:
        Settings._embed_model = previous
    records = {r["name"]: r for r in traced.records()}
    documents = {d["id"]: d for d in records["VectorIndexRetriever.retrieve"]["output"]}
    assert documents["n1"]["metadata"] == {"file_name": "shipping.pdf", "page_label": "3", "window": "w" * 200,
                                           "tags": "['faq', 'orders']", "year": 2024, "draft": False}
    assert documents["n2"]["metadata"] == {f"k{i:02}": i for i in range(20)}  # the first 20 keys
    assert "metadata" not in documents["n3"]
    assert documents["n1"]["content"] == "Orders ship in 24 hours."
    assert isinstance(documents["n1"]["score"], float)
    retrieved = records["VectorIndexRetriever.retrieve"]["output"]
    assert records["SimilarityPostprocessor.postprocess_nodes"]["output"] == retrieved  # a rerank's nodes too
