"""Against the real libraries: the ``threads`` integration
(LangChain's own pools, a gRPC server's pool, nested pools, cancelled and queued tasks, failures of
its own, memory), LangChain embedding classes of every shape (aliases, wrappers, static methods,
pydantic, diamonds, huge inputs, reinstalls), and usage summed over several owned requests
(ChatOpenAI, retries, streams, owners shared by threads)."""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import sys
import threading
import tracemalloc
import types
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import grpc
import openai
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langchain_openai import ChatOpenAI
from opentelemetry import context as otel_context
from pydantic import BaseModel, field_validator

import autotrace
from autotrace import carried, stats
from autotrace.integrations import ownership, threads
from autotrace.testing.fake_openai import FakeOpenAI
from tests import grpc_services as svc
from tests.helpers import Traced, shape, unordered


@autotrace.traced_tool
def lookup(order: str) -> str:
    return f"{order}:{autotrace.current_tenant()}"


def _worker_tenant() -> str | None:
    return autotrace.current_tenant()


def _internal_errors() -> dict[str, Any]:
    return {key: value for key, value in stats().items() if key.startswith("internal_errors")}


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Threads switch as often as the interpreter allows: a race shows at once."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


# -- threads -----------------------------------------------------------------------------------------
@pytest.mark.integrations("threads", "langchain")
def test_langchain_s_own_pools_record_each_run_once_in_its_place(traced: Traced) -> None:
    parallel = RunnableParallel(a=RunnableLambda(lookup), b=RunnableLambda(lambda x: x + "!"))
    with autotrace.tenant("acme"):
        assert parallel.invoke("q") == {"a": "q:acme", "b": "q!"}
        assert RunnableLambda(lookup).batch(["1", "2", "3"], config={"max_concurrency": 2}) == [
            "1:acme", "2:acme", "3:acme"]
    records = traced.records()
    assert unordered(shape(records)) == unordered([  # the parallel branches start in either order
        ("chain", "RunnableParallel<a,b>", [("chain", "lookup", [("tool", "lookup", [])]),
                                            ("chain", "RunnableLambda", [])]),
        *[("chain", "lookup", [("tool", "lookup", [])])] * 3])
    assert {r["tenant"] for r in records} == {"acme"} and len({r["trace_id"] for r in records}) == 4


def test_a_grpc_server_s_pool_keeps_each_rpc_s_tenant(tmp_path: Path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "g.db", integrations=("threads", "grpc"),
                      export_interval=0.05, trust_incoming_tenant=True)
    server, port = svc.start_sync_server()

    def call(tenant: str | None) -> tuple[str | None, str | None]:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            if tenant is None:
                return svc.Stub(channel).Unary({"text": "-"})["tenant"], None
            with autotrace.tenant(tenant), autotrace.start_span(f"client-{tenant}"):
                return svc.Stub(channel).Unary({"text": tenant})["tenant"], tenant

    try:
        with ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(call, [f"t{i % 4}" if i % 5 else None for i in range(60)]))
    finally:
        server.stop(0)
    assert [seen for seen, sent in replies if seen != sent] == []
    inner = [r["tenant"] for r in Traced(tmp_path / "g.db").records() if r["name"] == "inner-unary"]
    assert Counter(inner) == Counter(sent for _, sent in replies)


@pytest.mark.integrations("threads")
def test_nested_pools_map_with_a_timeout_and_a_task_s_own_tenant(traced: Traced) -> None:
    def sets_its_own(order: str) -> str:
        with autotrace.tenant("globex"):
            return lookup(order)

    with autotrace.tenant("acme"), autotrace.start_agent("turn"), ThreadPoolExecutor(2) as outer, \
            ThreadPoolExecutor(2) as inner:
        assert outer.submit(lambda: inner.submit(lookup, "nested").result()).result() == "nested:acme"
        assert list(outer.map(lookup, ["m1", "m2"], timeout=10)) == ["m1:acme", "m2:acme"]
        assert outer.submit(sets_its_own, "own").result() == "own:globex"  # globex's: a trace of its own
        assert {outer.submit(_worker_tenant).result() for _ in range(4)} == {"acme"}
    records = traced.records()
    turn = next(r for r in records if r["name"] == "turn")
    own = [r for r in records if r["trace_id"] != turn["trace_id"]]
    assert shape([r for r in records if r not in own]) == [("agent", "turn", [("tool", "lookup", [])] * 3)]
    assert [(r["name"], r["parent_id"], r["tenant"]) for r in own] == [("lookup", None, "globex")]
    assert {r["tenant"] for r in records if r not in own} == {"acme"}
    assert (stats().get("tenant_new_trace"), stats().get("tenant_mismatch")) == (1, None)


@pytest.mark.integrations("threads")
def test_generator_and_coroutine_functions_come_back_as_they_would(traced: Traced) -> None:
    def numbers() -> Iterator[str | None]:
        yield autotrace.current_tenant()

    async def coroutine() -> str | None:
        return autotrace.current_tenant()

    with autotrace.tenant("acme"), ThreadPoolExecutor(1) as pool:
        generator = pool.submit(numbers).result()
        awaitable = pool.submit(coroutine).result()
        assert inspect.isgenerator(generator) and inspect.iscoroutine(awaitable)
        assert list(generator) == ["acme"]  # run by the caller, in its own context
        assert asyncio.run(awaitable) == "acme"
    assert _internal_errors() == {}


@pytest.mark.integrations("threads")
def test_cancelled_tasks_and_an_uninstall_while_tasks_wait(traced: Traced) -> None:
    release = threading.Event()
    with autotrace.tenant("acme"):
        pool = ThreadPoolExecutor(1)
        pool.submit(release.wait)
        cancelled = [pool.submit(lookup, str(i)) for i in range(5)]
        release.set()
        pool.shutdown(cancel_futures=True)
    assert [f.cancelled() for f in cancelled] == [True] * 5
    release.clear()
    with ThreadPoolExecutor(1) as pool:
        with autotrace.tenant("acme"), autotrace.start_span("request"):
            pool.submit(release.wait)
            queued = [pool.submit(_worker_tenant) for _ in range(3)]
        autotrace.uninstall()
        release.set()
        assert [f.result() for f in queued] == ["acme"] * 3  # they run as submitted
        assert pool.submit(_worker_tenant).result() is None  # nothing kept, nothing wrapped
    assert _internal_errors() == {}


@pytest.mark.integrations("threads")
def test_a_failure_of_autotrace_s_own_never_changes_a_task_s_result(traced: Traced,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("autotrace's own bug")

    real = otel_context
    with ThreadPoolExecutor(1) as pool, autotrace.tenant("acme"), autotrace.start_span("request"):
        monkeypatch.setattr(carried, "otel_context", types.SimpleNamespace(  # where a task's state is set
            attach=broken, detach=real.detach, get_current=real.get_current))
        assert pool.submit(divmod, 7, 2).result() == (3, 1)  # run in the worker's own state
        assert pool.submit(_worker_tenant).result() is None
        monkeypatch.setattr(carried, "otel_context", real)
        monkeypatch.setattr(threads, "otel_context", types.SimpleNamespace(  # where the submitter's is taken
            attach=real.attach, detach=real.detach, get_current=broken))
        assert pool.submit(divmod, 9, 4).result() == (2, 1)  # handed over as it is
        monkeypatch.setattr(threads, "otel_context", real)
        assert pool.submit(_worker_tenant).result() == "acme"
    assert _internal_errors() == {"internal_errors.threads": 3}


@pytest.mark.integrations("threads")
def test_a_hundred_thousand_short_tasks_hold_no_memory(traced: Traced) -> None:
    def nothing() -> None:
        return None

    with autotrace.tenant("acme"), autotrace.start_span("request"), ThreadPoolExecutor(4) as pool:
        wait([pool.submit(nothing) for _ in range(2_000)])
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            for _ in range(10):
                wait([pool.submit(nothing) for _ in range(10_000)])
            gc.collect()
            grown = sum(d.size_diff for d in tracemalloc.take_snapshot().compare_to(before, "filename"))
        finally:
            tracemalloc.stop()
    assert grown < 100_000  # bytes, over 100,000 submits: nothing kept per task


# -- LangChain embedding classes -----------------------------------------------------------------------
def _embedded(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["name"], r["input"], r["output"], r["metadata"].get("input_count"), r["metadata"].get("dimensions"),
             r["metadata"]["operation"], r["model"]) for r in records]


def _unwrapped(self: Any, texts: list[str]) -> list[list[float]]:
    return [[0.5, 0.5, 0.5] for _ in texts]


def _no_wraps(method: Any) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:  # a decorator without functools.wraps
        return method(*args, **kwargs)
    return wrapper


@pytest.mark.integrations("langchain")
def test_a_method_is_named_as_the_class_defines_it_whatever_its_function_is_called(traced: Traced) -> None:
    class Aliased(Embeddings):
        embed_documents = _unwrapped

        @_no_wraps
        def embed_query(self, text: str) -> list[float]:
            return [0.5, 0.5, 0.5]

    runtime = type("Runtime", (Aliased,), {"embed_query": lambda self, text: [1.0, 2.0, 3.0, 4.0]})
    assert Aliased().embed_documents(["a", "b"]) == [[0.5] * 3] * 2
    assert Aliased().embed_query("q") == [0.5] * 3
    assert runtime().embed_query("r") == [1.0, 2.0, 3.0, 4.0]
    assert _embedded(traced.records()) == [
        ("Aliased.embed_documents", ["a", "b"], {"count": 2}, 2, 3, "embed_documents", None),
        ("Aliased.embed_query", "q", {"count": 1}, 1, 3, "embed_query", None),
        ("Runtime.embed_query", "r", {"count": 1}, 1, 4, "embed_query", None)]


class _Inner(Embeddings):
    model = "inner-embed-1"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0] for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0, 0.0]


class _Cached(Embeddings):
    """A caching wrapper as LangChain's ``CacheBackedEmbeddings`` (not installed here) is one."""

    def __init__(self, inner: Embeddings, attribute: str = "underlying_embeddings") -> None:
        setattr(self, attribute, inner)
        self.inner, self.store = inner, {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in texts if t not in self.store]
        if missing:
            self.store.update(zip(missing, self.inner.embed_documents(missing), strict=True))
        return [self.store[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


@pytest.mark.integrations("langchain")
def test_a_caching_wrapper_is_one_embedding_with_the_wrapped_model(traced: Traced) -> None:
    cached, other = _Cached(_Inner()), _Cached(_Inner(), attribute="delegate")
    for model in (cached, other):
        assert model.embed_documents(["a", "b"]) == [[1.0, 0.0]] * 2  # a miss: the inner model runs
        assert model.embed_documents(["a", "b"]) == [[1.0, 0.0]] * 2  # a hit: it does not
    documents = ("_Cached.embed_documents", ["a", "b"], {"count": 2}, 2, 2, "embed_documents")
    assert _embedded(traced.records()) == [(*documents, "inner-embed-1"), (*documents, "inner-embed-1"),
                                           (*documents, "inner-embed-1"), (*documents, None)]


@pytest.mark.integrations("langchain")
def test_static_class_and_partial_methods_still_work_untraced(traced: Traced) -> None:
    class Odd(Embeddings):
        @staticmethod
        def embed_query(text: str) -> list[float]:
            return [1.0]

        @classmethod
        def embed_documents(cls, texts: list[str]) -> list[list[float]]:
            return [[2.0] for _ in texts]

        def aembed_query(self, text: str) -> list[float]:  # "async" by name only: returns no awaitable
            return [3.0]

    class Partial(DeterministicFakeEmbedding):
        embed_query = functools.partialmethod(DeterministicFakeEmbedding.embed_query)
        embed_documents = functools.partial(lambda scale, texts: [[scale] for _ in texts], 4.0)

    assert (Odd().embed_query("x"), Odd().embed_documents(["y"]), Odd.embed_query("z")) == ([1.0], [[2.0]], [1.0])
    assert Odd().aembed_query("a") == [3.0] and Partial(size=2).embed_documents(["d"]) == [[4.0]]
    assert len(Partial(size=2).embed_query("p")) == 2  # the base's function, wrapped where it is defined
    assert _embedded(traced.records()) == [("Partial.embed_query", "p", {"count": 1}, 1, 2, "embed_query", None)]


@pytest.mark.integrations("langchain")
def test_pydantic_validators_runtime_subclasses_and_a_diamond(traced: Traced) -> None:
    class Served(BaseModel, Embeddings):
        model_name: str = "served"

        @field_validator("model_name")
        @classmethod
        def lower(cls, value: str) -> str:
            return value.lower()

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[0.0] for _ in texts]

        def embed_query(self, text: str) -> list[float]:
            return [0.0]

    class Left(Served):
        pass

    class Right(Served):
        def embed_query(self, text: str) -> list[float]:
            return super().embed_query(text)

    class Diamond(Left, Right):
        pass

    assert Diamond(model_name="BIG-Model").embed_query("d") == [0.0]
    assert type("Later", (Served,), {})().embed_documents(["l"]) == [[0.0]]
    assert _embedded(traced.records()) == [("Diamond.embed_query", "d", {"count": 1}, 1, 1, "embed_query", "big-model"),
                                           ("Later.embed_documents", ["l"], {"count": 1}, 1, 1, "embed_documents",
                                            "served")]


@pytest.mark.integrations("langchain")
def test_ten_thousand_texts_are_recorded_bounded(traced: Traced) -> None:
    texts = [f"text number {i} " * 20 for i in range(10_000)]
    assert len(DeterministicFakeEmbedding(size=8).embed_documents(texts)) == 10_000
    [record] = traced.records()
    assert isinstance(record["input"], str) and len(record["input"]) <= 70_000
    assert (record["output"], record["metadata"]["input_count"], record["metadata"]["dimensions"]) == (
        {"count": 10_000}, 10_000, 8)


def test_install_twice_and_reinstall_wrap_once_and_uninstall_restores(tmp_path: Path) -> None:
    original = DeterministicFakeEmbedding.__dict__["embed_query"]
    model = DeterministicFakeEmbedding(size=2)
    options: dict[str, Any] = {"local_store": "on", "local_store_path": tmp_path / "e.db",
                               "integrations": ("langchain",), "export_interval": 0.05}
    autotrace.install(**options)
    autotrace.install(**options)
    model.embed_query("once")
    autotrace.uninstall()
    assert DeterministicFakeEmbedding.__dict__["embed_query"] is original
    assert "__init_subclass__" not in Embeddings.__dict__
    model.embed_query("untraced")
    autotrace.install(**options)
    model.embed_query("again")
    assert DeterministicFakeEmbedding.__dict__["embed_query"].__wrapped__ is original
    assert [(r["name"], r["input"]) for r in Traced(tmp_path / "e.db").records()] == [
        ("DeterministicFakeEmbedding.embed_query", "once"), ("DeterministicFakeEmbedding.embed_query", "again")]


# -- usage summed over owned requests -------------------------------------------------------------------
@pytest.mark.integrations("langchain", "openai")
def test_chat_openai_usage_is_not_doubled_and_each_retry_is_its_own(traced: Traced, fake: FakeOpenAI) -> None:
    llm = ChatOpenAI(base_url=fake.base_url, api_key="sk-test", model="gpt-4o-mini", max_retries=0)
    fake.script(reply="hi", usage=(10, 5))
    llm.invoke("hello")
    fake.script(error=(500, "boom")).script(reply="ok", usage=(7, 3))
    llm.with_retry(stop_after_attempt=2, wait_exponential_jitter=False).invoke("retry")
    fake.script(reply="streamed", usage=(4, 2), chunks=3)
    streaming = ChatOpenAI(base_url=fake.base_url, api_key="sk-test", model="gpt-4o-mini", stream_usage=True)
    assert "".join(str(c.content) for c in streaming.stream("s")) == "streamed"
    generations = [r for r in traced.records() if r["type"] == "generation"]
    assert [(r["level"], r["usage"] and (r["usage"]["input"], r["usage"]["output"], r["usage"]["total"]))
            for r in generations] == [("DEFAULT", (10, 5, 15)), ("ERROR", None), ("DEFAULT", (7, 3, 10)),
                                      ("DEFAULT", (4, 2, 6))]


@pytest.mark.integrations("langchain")
def test_concurrent_replies_to_shared_and_own_owners_add_up(traced: Traced, fast_switching: None) -> None:
    shared = autotrace.start_embedding("shared")
    owners = [autotrace.start_embedding(f"own-{i}") for i in range(8)]
    reply = {"usage": {"input": 1, "total": 1}, "cost": {"total": 1.0}, "response_model": "m"}

    def replies(shared: Any, own: Any) -> None:
        for _ in range(1_000):
            ownership.enrich_reply(shared, dict(reply))
            ownership.enrich_reply(own, dict(reply))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(functools.partial(replies, shared), owners))
    assert [(o.fields["usage"], o.fields["cost"]) for o in (shared, *owners)] == [
        ({"input": 8_000, "total": 8_000}, {"total": 8_000.0})] + [
        ({"input": 1_000, "total": 1_000}, {"total": 1_000.0})] * 8
    for obs in (shared, *owners):
        obs.end()
    del shared, owners, obs
    gc.collect()
    assert len(ownership._usage_from_calls) == 0


@pytest.mark.integrations("threads", "langchain", "openai")
def test_an_embedding_fanned_out_in_a_pool_sums_every_request(traced: Traced, fake: FakeOpenAI,
                                                              client: openai.OpenAI, fast_switching: None) -> None:
    class FanOut(Embeddings):
        model = "text-embedding-3-small"

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            with ThreadPoolExecutor(8) as pool:
                return list(pool.map(lambda t: client.embeddings.create(model=self.model, input=[t]).data[0].embedding,
                                     texts))

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    texts = [f"w{i}" for i in range(64)]
    alone = sum(client.embeddings.create(model=FanOut.model, input=[t]).usage.prompt_tokens for t in texts)
    assert len(FanOut().embed_documents(texts)) == 64
    [record] = [r for r in traced.records() if r["name"] == "FanOut.embed_documents"]
    assert (record["usage"], record["model"]) == ({"input": alone, "total": alone}, "text-embedding-3-small")
