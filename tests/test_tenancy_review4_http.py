"""Review 4, HTTP: several tenants' concurrent requests through the tenant middleware on real
servers (FastAPI under uvicorn; a WSGI app under werkzeug's threaded server), each streaming an
OpenAI reply from a response body consumed after the endpoint (and, under WSGI, the middleware)
returned, with a background task and a thread-pool step; all in the request's tenant's project."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import StreamingResponse

import autotrace
from autotrace.middleware import TenantASGIMiddleware, TenantWSGIMiddleware
from tests.test_tenancy_review4 import TENANTS, Projects, projects_fixture, started_projects_fixture  # noqa: F401
from tests.test_web_frameworks import uvicorn_server
from tests.test_web_frameworks_wsgi import werkzeug_server

ROUNDS = 3
#: FastAPI's own spans (its request span, endpoint, dependencies, background task), then ours
PER_REQUEST = ["GET", "after", "fastapi.background_task", "fastapi.dependencies", "fastapi.endpoint", "late",
               "openai.chat", "openai.chat", "openai.chat", "pooled"]


def _calls(url: str) -> dict[str, list[str]]:
    """Every tenant's ``ROUNDS`` requests at once; each answer's text, by tenant."""
    async def all_at_once() -> list[tuple[str, str]]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            async def one(tenant: str, i: int) -> tuple[str, str]:
                answer = await client.get("/turn", params={"q": f"{tenant}-{i}"}, headers={"x-tenant": tenant})
                return tenant, answer.text
            return await asyncio.gather(*(one(t, i) for i in range(ROUNDS) for t in TENANTS))

    out: dict[str, list[str]] = {t: [] for t in TENANTS}
    for tenant, text in asyncio.run(all_at_once()):
        out[tenant].append(text)
    return out


def _check(projects: Projects, per_request: list[str] = PER_REQUEST) -> None:
    landed = projects.landed({t: ROUNDS * len(per_request) for t in TENANTS})
    for tenant, traces in landed.items():
        assert len(traces) == ROUNDS
        for spans in traces.values():
            assert sorted(s.name.split(" ")[0] for s in spans) == per_request
            assert all(tenant in s.attributes.get("langfuse.observation.input", tenant) for s in spans)


def test_asgi_streamed_bodies_background_and_late_tasks_of_concurrent_tenants(projects: Projects, fake: Any) -> None:
    projects.install("openai", "threads")
    aclient = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    sdk = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    app = FastAPI()
    late: list[asyncio.Task[None]] = []

    async def outlive(q: str) -> None:
        await asyncio.sleep(0.05)  # the request has ended
        with autotrace.start_span(f"late {q}"):
            pass

    def after(q: str) -> None:  # a background task: after the response, on anyio's thread pool
        with autotrace.start_span(f"after {q}"):
            sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": q}])

    def pooled(q: str) -> None:
        with autotrace.start_tool(f"pooled {q}"):
            pass

    @app.get("/turn")
    async def turn(q: str, tasks: BackgroundTasks) -> StreamingResponse:
        stream = await aclient.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": q}], stream=True)
        tasks.add_task(after, q)
        late.append(asyncio.create_task(outlive(q)))

        async def body() -> Any:  # consumed once the endpoint returned
            async for chunk in stream:
                yield "".join(c.delta.content or "" for c in chunk.choices)
            await asyncio.get_running_loop().run_in_executor(None, pooled, q)
            await aclient.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": q}])
        return StreamingResponse(body())

    def tenant_from(scope: Any) -> str:
        return dict(scope["headers"]).get(b"x-tenant", b"").decode()

    with uvicorn_server(TenantASGIMiddleware(app, tenant_from)) as url:
        answers = _calls(url)
        for _ in range(500):
            if len(late) == len(TENANTS) * ROUNDS and all(task.done() for task in late):
                break
            time.sleep(0.01)
    sdk.close()
    for tenant in TENANTS:
        assert sorted(answers[tenant]) == [f"echo: {tenant}-{i}" for i in range(ROUNDS)]
    _check(projects)


def test_wsgi_streamed_bodies_of_concurrent_tenants(projects: Projects, fake: Any) -> None:
    """The body generator runs after the middleware returned, on werkzeug's request threads."""
    projects.install("openai", "threads")
    sdk = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    pool = ThreadPoolExecutor(2)

    def pooled(q: str) -> None:
        with autotrace.start_tool(f"pooled {q}"):
            pass

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        q = environ["QUERY_STRING"].removeprefix("q=")
        start_response("200 OK", [("content-type", "text/plain")])

        def body() -> Iterator[bytes]:
            with autotrace.start_chain(f"request {q}"):
                stream = sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": q}],
                                                     stream=True)
                for chunk in stream:
                    yield "".join(c.delta.content or "" for c in chunk.choices).encode()
                pool.submit(pooled, q).result()
                sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": q}])
        return body()

    with werkzeug_server(TenantWSGIMiddleware(app, lambda env: env.get("HTTP_X_TENANT"))) as url:
        answers = _calls(url)
    pool.shutdown()
    sdk.close()
    for tenant in TENANTS:
        assert sorted(answers[tenant]) == [f"echo: {tenant}-{i}" for i in range(ROUNDS)]
    _check(projects, ["openai.chat", "openai.chat", "pooled", "request"])
