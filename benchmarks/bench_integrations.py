"""Per-call overhead of the framework integrations: a LangChain LCEL chain, a LlamaIndex query
and a gRPC unary call, bare, with autotrace, and with the other libraries' instrumentors for the
same framework (OpenInference and OpenLLMetry for LangChain and LlamaIndex, the OpenTelemetry
contrib instrumentor for gRPC), each in its own interpreter. The others run the SDK with a batch
processor and a no-op exporter; autotrace runs its whole pipeline with no destination.

    python benchmarks/bench_integrations.py [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness

CONTENDERS = ["bare", "autotrace", "openinference", "openllmetry", "otel-contrib"]
COLUMNS = ["langchain", "llamaindex", "grpc"]


def _instrumentors(contender: str) -> dict[str, Any]:
    """Per column, a function that instruments it (contenders cover different frameworks)."""

    def autotrace_all() -> None:
        import autotrace

        autotrace.install(local_store="off", integrations=("langchain", "llama_index", "grpc"))

    def openinference_langchain() -> None:
        from openinference.instrumentation.langchain import LangChainInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=_harness.otel_provider())

    def openinference_llamaindex() -> None:
        from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

        LlamaIndexInstrumentor().instrument(tracer_provider=_harness.otel_provider())

    def openllmetry_langchain() -> None:
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor

        LangchainInstrumentor().instrument(tracer_provider=_harness.otel_provider())

    def openllmetry_llamaindex() -> None:
        from opentelemetry.instrumentation.llamaindex import LlamaIndexInstrumentor

        LlamaIndexInstrumentor().instrument(tracer_provider=_harness.otel_provider())

    def contrib_grpc() -> None:
        from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient, GrpcInstrumentorServer

        provider = _harness.otel_provider()
        GrpcInstrumentorClient().instrument(tracer_provider=provider)
        GrpcInstrumentorServer().instrument(tracer_provider=provider)

    return {
        "bare": {column: None for column in COLUMNS},
        "autotrace": {"langchain": autotrace_all, "llamaindex": None, "grpc": None},
        "openinference": {"langchain": openinference_langchain, "llamaindex": openinference_llamaindex},
        "openllmetry": {"langchain": openllmetry_langchain, "llamaindex": openllmetry_llamaindex},
        "otel-contrib": {"grpc": contrib_grpc},
    }[contender]


def langchain_call() -> Any:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | FakeListChatModel(responses=["ok"]) | StrOutputParser()
    return lambda: chain.invoke({"q": "hello"})


def llamaindex_call() -> Any:
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.core.embeddings.mock_embed_model import MockEmbedding
    from llama_index.core.llms.mock import MockLLM

    Settings.llm = MockLLM(max_tokens=4)
    Settings.embed_model = MockEmbedding(embed_dim=8)
    engine = VectorStoreIndex.from_documents([Document(text="a"), Document(text="b")]).as_query_engine()
    return lambda: engine.query("q")


def grpc_call() -> Any:
    from concurrent import futures

    import grpc

    handler = grpc.method_handlers_generic_handler("b.B", {"U": grpc.unary_unary_rpc_method_handler(
        lambda request, context: request, request_deserializer=bytes, response_serializer=bytes)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary("/b.B/U", request_serializer=bytes, response_deserializer=bytes)
    return lambda _keep=(server, channel): call(b"x")  # keep the server alive


def measure(contender: str, iterations: int) -> dict[str, Any]:
    """Instrument what the contender covers (a column whose instrumentor fails is reported, not
    measured), then time each covered column."""
    result: dict[str, Any] = {}
    covered = []
    for column, instrument in _instrumentors(contender).items():
        try:
            if instrument is not None:
                instrument()
            covered.append(column)
        except Exception as exc:
            result.setdefault("unavailable", {})[column] = f"{type(exc).__name__}: {exc}"[:100]
    factories = {"langchain": langchain_call, "llamaindex": llamaindex_call, "grpc": grpc_call}
    for column in covered:
        result[column] = _harness.time_sync(factories[column](), iterations)
    return result


def _unavailable_footer(rows: list[tuple[str, dict[str, Any] | None]], runs: _harness.Runs) -> str:
    lines = [f"  {name} {column}: {reason}" for name, result in rows
             for column, reason in ((result or {}).get("unavailable") or {}).items()]
    return "instrumentors that could not run here:\n" + "\n".join(lines) if lines else ""


def main() -> None:
    _harness.compare_main(__file__, __doc__, CONTENDERS, COLUMNS, "framework integrations per call", measure, quick=100, full=500,
                          footer=_unavailable_footer)

if __name__ == "__main__":
    main()
