"""The application of the review-20 end-to-end scenario (no tests here): a FastAPI app under real
uvicorn on loopback, an "auth" layer naming each request's tenant from its bearer token, autotrace's
``TenantASGIMiddleware``, endpoints calling the real openai SDK (sync and async, streamed and not)
against the loopback fake server, a LangChain retriever chain and ``@traced_tool`` functions, and a
second in-process gRPC "RAG service" (grpcio on loopback, traced by the patched server) that embeds
the query with openai itself. Build it after ``autotrace.install`` so grpc's servers and channels
are the patched ones."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import openai
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import StreamingResponse
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from opentelemetry import trace

import autotrace
from autotrace.middleware import TenantASGIMiddleware
from tests import grpc_services as svc
from tests.test_web_frameworks import uvicorn_server

TOKENS = {"tok-acme": "acme", "tok-globex": "globex", "tok-initech": "initech", "tok-hooli": "hooli"}
SEARCH = "/rag.Retriever/Search"
PASSAGES = "/rag.Retriever/Passages"
#: The fake server's streams for the proxies: long enough for a caller to leave in the middle.
LONG = {"x-fake-chunks": "40"}


def _auth(app: Any) -> Any:
    """The application's own auth: a valid bearer token names the tenant, in the request scope."""
    async def authed(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            token = dict(scope["headers"]).get(b"authorization", b"").decode().removeprefix("Bearer ")
            scope["auth_tenant"] = TOKENS.get(token)
        await app(scope, receive, send)
    return authed


def _trace_id() -> str:
    return format(trace.get_current_span().get_span_context().trace_id, "032x")


@dataclass
class Services:
    """The running app and RAG service, and their clients."""

    url: str
    sync_client: openai.OpenAI
    grpc_port: int


def _rag_server(sync_client: openai.OpenAI) -> tuple[grpc.Server, int]:
    def search(request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        query = request["q"]
        sync_client.embeddings.create(model="text-embedding-3-small", input=query)
        with autotrace.start_retrieval("rag.search", query=query) as ret:
            docs = [{"id": f"doc-{i}", "text": f"policy {i} for {autotrace.current_tenant()}"} for i in range(2)]
            ret.update(doc_count=len(docs))
        return {"docs": docs, "tenant": autotrace.current_tenant()}

    def passages(request: dict[str, Any], context: grpc.ServicerContext) -> Iterator[dict[str, Any]]:
        """Passages one at a time, each embedded as it goes; a refused query is named in the error."""
        if request.get("refuse"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"refused query {request['q']!r}")
        for i in range(request.get("n", 20)):
            sync_client.embeddings.create(model="text-embedding-3-small", input=f"passage {i}")
            time.sleep(0.01)
            yield {"i": i, "tenant": autotrace.current_tenant()}

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("rag.Retriever", {
        "Search": grpc.unary_unary_rpc_method_handler(search, **svc.SERVER_KW),
        "Passages": grpc.unary_stream_rpc_method_handler(passages, **svc.SERVER_KW)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


@autotrace.traced_tool(name="lookup_policy")
def lookup_policy(customer: str) -> dict[str, str]:
    return {"customer": customer, "tier": "gold"}


@autotrace.traced_tool(name="lookup_policy_async")
async def lookup_policy_async(customer: str) -> dict[str, str]:
    return {"customer": customer, "tier": "silver"}


def _app(sync_client: openai.OpenAI, async_client: openai.AsyncOpenAI, grpc_port: int) -> FastAPI:
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    search = channel.unary_unary(SEARCH, **svc.CLIENT_KW)
    aio: dict[str, Any] = {}

    class RagRetriever(BaseRetriever):
        """Asks the RAG service over gRPC (run by LangChain on an executor thread under ``ainvoke``)."""

        def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun
                                    ) -> list[Document]:
            reply = search({"q": query})
            return [Document(page_content=d["text"], id=d["id"]) for d in reply["docs"]]

    def answer(docs: list[Document]) -> str:
        lookup_policy(autotrace.current_tenant() or "?")
        reply = sync_client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": " | ".join(d.page_content for d in docs)}])
        return reply.choices[0].message.content or ""

    chain = RagRetriever() | RunnableLambda(answer)
    app = FastAPI()

    def messages(q: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": q}]

    @app.post("/async")
    async def ask_async(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("stream"):
            stream = await async_client.chat.completions.create(model="gpt-4o-mini", messages=messages(body["q"]),
                                                                stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        else:
            reply = await async_client.chat.completions.create(model="gpt-4o-mini", messages=messages(body["q"]))
            text = reply.choices[0].message.content or ""
        # by trace id: the current span is FastAPI's, no autotrace observation (alone, score() drops it)
        autotrace.score("helpful", 1.0, trace_id=_trace_id(), comment=f"asked: {body['q']}")
        return {"trace_id": _trace_id(), "tenant": autotrace.current_tenant(), "text": text}

    @app.post("/sync")
    def ask_sync(body: dict[str, Any]) -> dict[str, Any]:
        if body.get("stream"):
            with sync_client.chat.completions.create(model="gpt-4o-mini", messages=messages(body["q"]),
                                                     stream=True) as stream:
                text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        else:
            reply = sync_client.chat.completions.create(model="gpt-4o-mini", messages=messages(body["q"]))
            text = reply.choices[0].message.content or ""
        return {"trace_id": _trace_id(), "tenant": autotrace.current_tenant(), "text": text}

    @app.post("/rag")
    async def rag(body: dict[str, Any]) -> dict[str, Any]:
        with autotrace.trace_attributes(user_id=body.get("user"), session_id=f"s-{body.get('user')}"):
            text = await chain.ainvoke(body["q"])
        return {"trace_id": _trace_id(), "tenant": autotrace.current_tenant(), "text": text}

    @app.post("/rag-aio")
    async def rag_aio(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        if "stub" not in aio:  # made on the server's loop
            aio["channel"] = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
            aio["stub"] = aio["channel"].unary_unary(SEARCH, **svc.CLIENT_KW)
        reply = await aio["stub"]({"q": body["q"]})
        await lookup_policy_async(autotrace.current_tenant() or "?")
        return {"trace_id": _trace_id(), "tenant": autotrace.current_tenant(), "rag_tenant": reply["tenant"]}

    @app.post("/proxy")
    async def proxy(body: dict[str, Any]) -> StreamingResponse:
        """The model's stream passed on to the caller as it comes (a caller may leave early)."""
        stream = await async_client.chat.completions.create(model="gpt-4o-mini", messages=messages(body["q"]),
                                                            stream=True, extra_headers=LONG)

        async def relay() -> Any:
            async for chunk in stream:
                await asyncio.sleep(0.01)
                yield (chunk.choices[0].delta.content or "") if chunk.choices else ""
        return StreamingResponse(relay(), headers={"x-trace-id": _trace_id()})

    @app.post("/proxy-sync")
    def proxy_sync(body: dict[str, Any]) -> StreamingResponse:
        stream = sync_client.chat.completions.create(model="gpt-4o-mini", messages=messages(body["q"]),
                                                     stream=True, extra_headers=LONG)

        def relay() -> Any:
            for chunk in stream:
                time.sleep(0.01)
                yield (chunk.choices[0].delta.content or "") if chunk.choices else ""
        return StreamingResponse(relay(), headers={"x-trace-id": _trace_id()})

    @app.post("/later")
    async def later(body: dict[str, Any], tasks: BackgroundTasks) -> dict[str, Any]:
        """A summary made after the answer went out (a FastAPI background task)."""
        async def summarise() -> None:
            await async_client.chat.completions.create(model="gpt-4o-mini", messages=messages(body["q"]))
        tasks.add_task(summarise)
        return {"trace_id": _trace_id(), "tenant": autotrace.current_tenant()}

    @app.post("/fail")
    async def fail(body: dict[str, Any]) -> dict[str, Any]:
        """The model refuses the request (its error quotes the input), and the handler gives up."""
        try:
            await async_client.chat.completions.create(model="gpt-4o-mini", messages=messages(body["q"]),
                                                       extra_body={"fail": True})
        except openai.BadRequestError as exc:
            raise ValueError(f"could not answer {body['q']!r}") from exc
        return {}

    @app.post("/passages")
    async def passages(body: dict[str, Any]) -> StreamingResponse:
        """The RAG service's passages relayed as they come (over grpc.aio; a caller may leave early)."""
        if "passages" not in aio:
            aio["passages_channel"] = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
            aio["passages"] = aio["passages_channel"].unary_stream(PASSAGES, **svc.CLIENT_KW)
        call = aio["passages"]({"q": body["q"], "refuse": body.get("refuse", False)})

        async def relay() -> Any:
            async for passage in call:
                yield json.dumps(passage) + "\n"
        return StreamingResponse(relay(), headers={"x-trace-id": _trace_id()})

    app.state.closers = [channel.close]
    app.state.aio = aio
    return app


@contextlib.contextmanager
def running(openai_url: str, added: bool = False) -> Iterator[Services]:
    """The RAG service and the app, served until the block ends; the auth and tenant layers wrap
    the app, or (``added``) are the app's own ``add_middleware``, inside FastAPI's request span."""
    sync_client = openai.OpenAI(base_url=openai_url, api_key="sk-test", max_retries=0)
    async_client = openai.AsyncOpenAI(base_url=openai_url, api_key="sk-test", max_retries=0)
    server, port = _rag_server(sync_client)
    app = _app(sync_client, async_client, port)
    if added:
        app.add_middleware(TenantASGIMiddleware, tenant_from_scope=lambda scope: scope.get("auth_tenant"))
        app.add_middleware(_auth)
        asgi: Any = app
    else:
        asgi = _auth(TenantASGIMiddleware(app, lambda scope: scope.get("auth_tenant")))
    try:
        with uvicorn_server(asgi) as url:
            yield Services(url, sync_client, port)
    finally:
        for close in app.state.closers:
            close()
        server.stop(0)
        sync_client.close()
