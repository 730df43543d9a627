"""A node's metadata value that is a large list or dict (a table's rows, a vector kept beside the
text) is recorded as the head of its text, written only as far as the 200 characters kept: before,
the whole repr of each such value of each node was made on the caller's thread, then cut."""

from __future__ import annotations

import pytest
from llama_index.core.postprocessor import SimilarityPostprocessor
from llama_index.core.schema import NodeWithScore, TextNode

from tests.helpers import Traced

pytestmark = pytest.mark.integrations("llama_index")


class Cell:
    """A metadata item that counts how often its text is written."""

    written = 0

    def __repr__(self) -> str:
        Cell.written += 1
        return "cell"


def test_a_large_metadata_value_is_recorded_as_its_texts_head(traced: Traced) -> None:
    rows = [Cell() for _ in range(5000)]
    node = TextNode(id_="n1", text="a table", metadata={"rows": rows, "file_name": "t.csv"})
    found = SimilarityPostprocessor(similarity_cutoff=0.0).postprocess_nodes([NodeWithScore(node=node, score=0.5)],
                                                                           query_str="q")
    assert [n.node.node_id for n in found] == ["n1"]
    record = next(r for r in traced.records() if r["name"] == "SimilarityPostprocessor.postprocess_nodes")
    assert record["output"] == [{"id": "n1", "score": 0.5, "content": "a table",
                                 "metadata": {"rows": ("[" + "cell, " * 40)[:200], "file_name": "t.csv"}}]


def test_the_text_of_a_large_value_is_not_written_in_full() -> None:
    from autotrace.integrations.llama_index._fields import _document

    rows = [Cell() for _ in range(5000)]
    Cell.written = 0
    entry = _document(NodeWithScore(node=TextNode(id_="n1", text="t", metadata={"rows": rows}), score=1.0))
    assert entry["metadata"] == {"rows": ("[" + "cell, " * 40)[:200]}
    assert Cell.written < 100
