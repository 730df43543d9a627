"""End-to-end tenancy under concurrency (review 4): several tenants' requests interleaved on asyncio
tasks, thread pools, real ASGI/WSGI servers and gRPC servers, the real openai SDK against the loopback
fake; every exported span and score must land in its own tenant's project only, each trace whole."""

from __future__ import annotations

import asyncio
import base64
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from typing import Any

import openai
import pytest

import autotrace
from autotrace.export.credentials import Credentials, StaticCredentials
from autotrace.testing.otlp_receiver import OtlpReceiver

TENANTS = ("acme", "globex", "initech")


def auth(tenant: str) -> str:
    return "Basic " + base64.b64encode(f"pk-{tenant}:sk-{tenant}".encode()).decode()


class Projects:
    """One receiver per tenant; ``install`` routes each tenant to its own (no default project)."""

    def __init__(self) -> None:
        self.rx = {tenant: OtlpReceiver().start() for tenant in TENANTS}
        for tenant, rx in self.rx.items():
            rx.require_auth(auth(tenant))

    def install(self, *integrations: str, **options: Any) -> None:
        credentials = StaticCredentials({t: Credentials(f"pk-{t}", f"sk-{t}", host=rx.endpoint)
                                         for t, rx in self.rx.items()})
        autotrace.install(langfuse_host="http://127.0.0.1:9", credentials=credentials, integrations=integrations,
                          export_interval=0.05, **options)

    def stop(self) -> None:
        for rx in self.rx.values():
            rx.stop()

    def landed(self, spans_per_tenant: dict[str, int], mismatches: int = 0) -> dict[str, dict[str, list[Any]]]:
        """Each tenant's spans by trace id, once ``spans_per_tenant`` arrived; asserts they carry
        that tenant, came with its keys, and each trace is whole (every parent among its spans)."""
        assert autotrace.flush(20)
        out: dict[str, dict[str, list[Any]]] = {}
        for tenant, rx in self.rx.items():
            spans = rx.wait_for_spans(spans_per_tenant.get(tenant, 0), timeout=10)
            assert len(spans) == spans_per_tenant.get(tenant, 0), (tenant, len(spans), names(spans))
            assert {s.attributes.get("autotrace.tenant") for s in spans} <= {tenant}
            assert {s.headers["authorization"] for s in spans} <= {auth(tenant)}
            traces: dict[str, list[Any]] = defaultdict(list)
            for span in spans:
                traces[span.trace_id].append(span)
            for trace_spans in traces.values():
                ids = {s.span_id for s in trace_spans}
                roots = [s for s in trace_spans if s.parent_span_id not in ids]
                assert len(roots) == 1, (tenant, [(s.name, s.parent_span_id) for s in trace_spans])
            out[tenant] = dict(traces)
        stats = autotrace.stats()
        assert not [k for k in stats if k.startswith(("spans_dropped", "scores_dropped")) and stats[k]], stats
        assert stats.get("tenant_mismatch", 0) == mismatches, stats
        return out

    def scores(self) -> dict[str, list[dict[str, Any]]]:
        """Each tenant's scores (bodies), each asserted sent with that tenant's keys."""
        out = {}
        for tenant, rx in self.rx.items():
            assert {headers.get("authorization") for headers, _ in rx.scores} <= {auth(tenant)}
            out[tenant] = [body for _, body in rx.scores]
        return out


def names(spans: list[Any]) -> list[str]:
    return sorted(s.name for s in spans)


@pytest.fixture(scope="module", name="started_projects")
def started_projects_fixture() -> Iterator[Projects]:
    projects = Projects()
    yield projects
    projects.stop()


@pytest.fixture(name="projects")
def projects_fixture(started_projects: Projects) -> Projects:
    """The three projects, emptied for the test (import both fixtures to use them elsewhere)."""
    for tenant, rx in started_projects.rx.items():
        rx.clear()
        rx.require_auth(auth(tenant))
    return started_projects


ROUNDS = 4  # requests per tenant


def test_asyncio_tenants_interleaving_streams_fan_out_executors_and_late_work(projects: Projects, fake: Any) -> None:
    """Each tenant's requests as tasks of one task group: a stream started in one request is consumed
    only once every other request has begun (and one handed to a shared consumer task running in
    another tenant's scope); a ``gather`` and a ``TaskGroup`` fan-out; ``run_in_executor`` and a
    ``ThreadPoolExecutor``; ``copy_context().run``; a task that outlives its request; scores given
    after the request ended, from another tenant's request. All of it lands in the request's project."""
    projects.install("openai", "threads")
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    sync_client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    pool = ThreadPoolExecutor(4)
    n = len(TENANTS) * ROUNDS
    late: list[asyncio.Task[None]] = []
    ended: list[autotrace.Observation] = []

    def in_thread(label: str) -> None:
        with autotrace.start_tool(f"thread-{label}"):
            sync_client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": label}])

    async def outlives(label: str, started: asyncio.Event) -> None:
        await started.wait()  # the request has ended by now
        await asyncio.sleep(0.01)
        with autotrace.start_span(f"late-{label}"):
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": label}])

    async def request(tenant: str, i: int, barrier: asyncio.Barrier, handoff: asyncio.Queue[Any]) -> None:
        label = f"{tenant}-{i}"
        with autotrace.tenant(tenant), autotrace.start_chain(f"request-{label}") as root:
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": label}], stream=True)
            handed = await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": f"handed {label}"}], stream=True)
            await handoff.put(handed)
            await barrier.wait()  # every other tenant's request has begun
            async for _ in stream:
                await asyncio.sleep(0)
            async def step(k: int) -> None:
                with autotrace.start_retrieval(f"fan-{label}-{k}"):
                    await asyncio.sleep(0)
            await asyncio.gather(step(0), step(1))
            async with asyncio.TaskGroup() as group:
                group.create_task(step(2))
                group.create_task(step(3))
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, in_thread, f"{label}-executor")
            await asyncio.wrap_future(pool.submit(in_thread, f"{label}-pool"))
            copy_context().run(lambda: autotrace.start_span(f"copied-{label}").end())
            done = asyncio.Event()
            late.append(asyncio.create_task(outlives(label, done)))
            ended.append(root)
        done.set()

    async def consumer(handoff: asyncio.Queue[Any]) -> None:
        with autotrace.tenant(TENANTS[-1]):  # a shared worker in one tenant's scope ends others' streams
            for _ in range(n):
                async for _ in await handoff.get():
                    pass

    async def main() -> None:
        barrier, handoff = asyncio.Barrier(n), asyncio.Queue()
        async with asyncio.TaskGroup() as group:
            group.create_task(consumer(handoff))
            for i in range(ROUNDS):
                for tenant in TENANTS:
                    group.create_task(request(tenant, i, barrier, handoff))
        await asyncio.gather(*late)
        with autotrace.tenant(TENANTS[0]):  # feedback on every request, after it ended
            for root in ended:
                root.score("helpful", 1)

    try:
        asyncio.run(main())
    finally:
        pool.shutdown()
        sync_client.close()
    per_request = ["copied", "fan", "fan", "fan", "fan", "late", "openai.chat", "openai.chat", "openai.chat",
                   "openai.chat", "openai.chat", "request", "thread", "thread"]
    # the scores given under the first tenant's scope on the others' requests: counted, sent to the others
    landed = projects.landed({t: ROUNDS * len(per_request) for t in TENANTS}, mismatches=ROUNDS * (len(TENANTS) - 1))
    for tenant, traces in landed.items():
        assert len(traces) == ROUNDS
        for spans in traces.values():
            (root,) = [s for s in spans if s.name.startswith("request-")]
            label = root.name.removeprefix("request-")
            assert label.startswith(tenant + "-")
            assert sorted(s.name.split("-")[0] for s in spans) == per_request
            inputs = {s.attributes.get("langfuse.observation.input", "") for s in spans if s.name == "openai.chat"}
            assert all(label in text for text in inputs), inputs
    scores = projects.scores()
    for tenant in TENANTS:
        assert sorted(body["traceId"] for body in scores[tenant]) == sorted(landed[tenant])


def test_a_worker_task_started_by_one_tenants_request_never_sends_other_tenants_work_there(
        projects: Projects) -> None:
    """A queue worker started (``asyncio.create_task``) by the first request inherits that request's
    context, its span current; it then serves every tenant, each job in the job's tenant's scope."""
    projects.install()
    acme, globex = TENANTS[0], TENANTS[1]

    async def main() -> None:
        jobs: asyncio.Queue[str] = asyncio.Queue()

        async def worker() -> None:
            while True:
                tenant = await jobs.get()
                with autotrace.tenant(tenant), autotrace.start_span(f"job-{tenant}"):
                    pass
                jobs.task_done()

        held = asyncio.Event()

        async def request(tenant: str, started: list[asyncio.Task[None]]) -> None:
            with autotrace.tenant(tenant), autotrace.start_chain(f"request-{tenant}"):
                if not started:
                    started.append(asyncio.create_task(worker()))  # lazily, by the first request
                await jobs.put(tenant)
                await jobs.join()
                if tenant == acme:
                    await held.wait()

        started: list[asyncio.Task[None]] = []
        first = asyncio.create_task(request(acme, started))
        while not started:
            await asyncio.sleep(0)
        await request(globex, started)  # while acme's request is still running
        held.set()
        await first
        started[0].cancel()

    asyncio.run(main())
    landed = projects.landed({acme: 2, globex: 2})
    assert [names(spans) for spans in landed[acme].values()] == [[f"job-{acme}", f"request-{acme}"]]
    assert sorted(name for spans in landed[globex].values() for name in names(spans)) == [
        f"job-{globex}", f"request-{globex}"]
