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
#: What each contender instruments (a column it does not instrument is not measured).
COVERS = {
    "bare": COLUMNS, "autotrace": COLUMNS, "openinference": ["langchain", "llamaindex"],
    "openllmetry": ["langchain", "llamaindex"], "otel-contrib": ["grpc"],
}


def _otel_provider() -> Any:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Noop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Noop()))
    trace.set_tracer_provider(provider)
    return provider


def setup(contender: str) -> None:
    if contender == "autotrace":
        import autotrace

        autotrace.install(local_store="off", integrations=("langchain", "llama_index", "grpc"))
    elif contender == "openinference":
        provider = _otel_provider()
        from openinference.instrumentation.langchain import LangChainInstrumentor
        from openinference.instrumentation.llama_index import LlamaIndexInstrumentor

        LangChainInstrumentor().instrument(tracer_provider=provider)
        LlamaIndexInstrumentor().instrument(tracer_provider=provider)
    elif contender == "openllmetry":
        provider = _otel_provider()
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor
        from opentelemetry.instrumentation.llamaindex import LlamaIndexInstrumentor as LlamaInstrumentor

        LangchainInstrumentor().instrument(tracer_provider=provider)
        LlamaInstrumentor().instrument(tracer_provider=provider)
    elif contender == "otel-contrib":
        provider = _otel_provider()
        from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient, GrpcInstrumentorServer

        GrpcInstrumentorClient().instrument(tracer_provider=provider)
        GrpcInstrumentorServer().instrument(tracer_provider=provider)


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


def measure(contender: str, iterations: int) -> dict[str, float]:
    setup(contender)
    factories = {"langchain": langchain_call, "llamaindex": llamaindex_call, "grpc": grpc_call}
    return {name: _harness.time_sync(factories[name](), iterations) for name in COVERS[contender]}


def main() -> None:
    _harness.compare_main(__file__, __doc__, CONTENDERS, COLUMNS, "framework integrations per call", measure, quick=100, full=500)

if __name__ == "__main__":
    main()
