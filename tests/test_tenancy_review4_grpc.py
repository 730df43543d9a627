"""Review 4, gRPC: a sync server handling several tenants' calls at once on its thread pool (each
naming its tenant in metadata), calling a downstream gRPC service (which trusts its callers'
tenant) and the openai SDK, in a unary handler and in a streamed reply consumed after the handler
returned its generator; every span lands in its own tenant's project, each trace whole."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import openai

import autotrace
from tests import grpc_services as svc
from tests.test_tenancy_review4 import TENANTS, Projects, names, projects_fixture, started_projects_fixture  # noqa: F401

ROUNDS = 2


def test_a_sync_grpc_server_serving_tenants_at_once_keeps_each_calls_spans_in_its_project(
        projects: Projects, fake: Any) -> None:
    projects.install("grpc", "openai", trust_incoming_tenant=True,
                     grpc_tenant_from_call=lambda details, _: dict(details.invocation_metadata).get("x-tenant"))
    downstream, down_port = svc.start_sync_server()
    down_channel = grpc.insecure_channel(f"127.0.0.1:{down_port}")
    down = svc.Stub(down_channel)
    sdk = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    together = threading.Barrier(len(TENANTS), timeout=10)

    def work(label: str) -> dict[str, Any]:
        with autotrace.start_tool(f"handler-{label}"):
            sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": label}])
            reply = down.Unary({"text": label})
        return {"tenant": autotrace.current_tenant(), "down": reply["tenant"]}

    class Front:
        def Unary(self, request: dict[str, Any], context: Any) -> dict[str, Any]:
            together.wait()  # every tenant's call is on the pool at once
            return work(request["text"])

        def ServerStream(self, request: dict[str, Any], context: Any) -> Iterator[dict[str, Any]]:
            together.wait()
            yield {"tenant": autotrace.current_tenant()}
            yield work(request["text"])

        ClientStream = Bidi = None

    front = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    front.add_generic_rpc_handlers((svc.handler(Front()),))
    port = front.add_insecure_port("127.0.0.1:0")
    front.start()
    replies: dict[str, list[Any]] = {t: [] for t in TENANTS}
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = svc.Stub(channel)

            def caller(tenant: str, i: int, streamed: bool) -> None:
                label, metadata = f"{tenant}-{i}", [("x-tenant", tenant)]
                with autotrace.tenant(tenant):
                    call(stub, label, metadata, streamed)

            def call(stub: svc.Stub, label: str, metadata: Any, streamed: bool) -> None:
                tenant = label.rsplit("-", 1)[0]
                if streamed:
                    replies[tenant].extend(stub.ServerStream({"text": label}, metadata=metadata))
                else:
                    replies[tenant].append(stub.Unary({"text": label}, metadata=metadata))

            for i in range(ROUNDS):
                for streamed in (False, True):
                    threads = [threading.Thread(target=caller, args=(t, i, streamed)) for t in TENANTS]
                    for thread in threads:
                        thread.start()
                    for thread in threads:
                        thread.join(20)
    finally:
        front.stop(0)
        downstream.stop(0)
        down_channel.close()
        sdk.close()
    for tenant in TENANTS:
        assert [r for r in replies[tenant] if "down" in r] == [{"tenant": tenant, "down": tenant}] * 2 * ROUNDS
    # per call: the caller's client span, the front's server span, the handler's tool and openai
    # spans, the downstream client span, the downstream server span and its retrieval
    landed = projects.landed({t: 2 * ROUNDS * 7 for t in TENANTS})
    for tenant, traces in landed.items():
        assert len(traces) == 2 * ROUNDS
        shapes = []
        for spans in traces.values():
            (tool,) = [s for s in spans if s.name.startswith("handler-")]
            assert tool.name.startswith(f"handler-{tenant}-")
            shapes.append([n for n in names(spans) if not n.startswith("handler-")])
        unary, stream = f"{svc.SERVICE}/Unary", f"{svc.SERVICE}/ServerStream"
        assert sorted(shapes) == [sorted([stream] * 2 + [unary] * 2 + ["inner-unary", "openai.chat"])] * ROUNDS + [
            sorted([unary] * 4 + ["inner-unary", "openai.chat"])] * ROUNDS
