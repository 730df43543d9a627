"""The RAG service: a gRPC server answering knowledge retrievals with a LangChain retriever over a
FAISS index of OpenAI embeddings. Run it with ``autotrace run`` and it traces itself.

    autotrace run -- python -m autotrace.demo.rag_service --port 50551 --openai http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import argparse
import signal
import sys
from concurrent import futures
from typing import Any

import faiss
import grpc
import numpy as np
import openai
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from .common import dumps, loads

DIMENSIONS = 256
KNOWLEDGE = [
    ("kb-refund-1", "Duplicate charges are refunded automatically within 5 business days."),
    ("kb-refund-2", "A refund goes back to the card that was charged for the order."),
    ("kb-ship-1", "Orders ship within 24 hours and arrive in 2 to 4 days."),
    ("kb-ship-2", "A delayed order can be tracked with its order number on the tracking page."),
    ("kb-account-1", "You can change the e-mail address of your account in the settings."),
]


class FaissRetriever(BaseRetriever):
    """Embeds the query with OpenAI and searches a FAISS inner-product index."""

    client: Any
    index: Any
    top_k: int = 2

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        vector = self.client.embeddings.create(model="text-embedding-3-small", input=[query],
                                               dimensions=DIMENSIONS).data[0].embedding
        scores, ids = self.index.search(np.array([vector], dtype="float32"), self.top_k)
        return [Document(page_content=KNOWLEDGE[i][1], id=KNOWLEDGE[i][0], metadata={"score": float(s)})
                for s, i in zip(scores[0], ids[0], strict=True) if i >= 0]


def build_retriever(openai_url: str) -> FaissRetriever:
    client = openai.OpenAI(base_url=openai_url, api_key="sk-demo", max_retries=0)
    vectors = client.embeddings.create(model="text-embedding-3-small", input=[t for _, t in KNOWLEDGE],
                                       dimensions=DIMENSIONS)
    matrix = np.array([d.embedding for d in vectors.data], dtype="float32")
    index = faiss.IndexFlatIP(matrix.shape[1])
    index.add(matrix)
    return FaissRetriever(client=client, index=index)


def serve(port: int, openai_url: str) -> None:
    retriever = build_retriever(openai_url)

    def retrieve(request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        documents = retriever.invoke(request["query"])
        return {"documents": [{"id": d.id, "content": d.page_content, "score": d.metadata["score"]}
                              for d in documents]}

    handler = grpc.method_handlers_generic_handler("rag.Knowledge", {
        "Retrieve": grpc.unary_unary_rpc_method_handler(retrieve, request_deserializer=loads,
                                                        response_serializer=dumps),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print("ready", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # exit normally so tracing flushes
    server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--openai", required=True)
    args = parser.parse_args()
    serve(args.port, args.openai)
