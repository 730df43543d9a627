"""The manual API: typed observations, nesting, decorators on every function kind, errors."""

from __future__ import annotations

import asyncio
import inspect
import threading
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace

import autotrace
from autotrace.observation import STREAM_CLOSED
from tests.helpers import Traced, shape


def test_typed_context_managers_build_the_exact_tree(traced: Traced) -> None:
    with autotrace.start_agent("agent", input="hi") as agent:
        with autotrace.start_generation("intent", model="m-1", input=[{"role": "user", "content": "hi"}]) as gen:
            gen.update(output="greet", usage={"input": 3, "output": 1, "total": 4}, cost=0.5,
                       prompt={"name": "intent", "version": 2}, model_parameters={"temperature": 0})
        with autotrace.start_retrieval("kb", query="hi", top_k=2, store="faq") as ret:
            ret.update(documents=[{"id": "d1", "score": 0.9}], doc_count=1)
        with autotrace.start_tool("lookup", arguments={"q": 1}) as tool:
            tool.update(result={"ok": True})
        with autotrace.start_guardrail("guard", input="x") as guard:
            guard.update(output="y", passed=False, modified=True, reason="pii")
        autotrace.event("note", metadata={"k": "v"})
        with autotrace.start_embedding("embed", model="e-1", input=["a", "b"]) as emb:
            emb.update(usage={"input": 2}, dimensions=8, input_count=2)
        agent.set_output("bye")

    records = traced.records()
    assert shape(records) == [
        ("agent", "agent", [
            ("generation", "intent", []),
            ("retriever", "kb", []),
            ("tool", "lookup", []),
            ("guardrail", "guard", []),
            ("event", "note", []),
            ("embedding", "embed", []),
        ])
    ]
    by_name = {r["name"]: r for r in records}
    gen = by_name["intent"]
    assert gen["model"] == "m-1"
    assert gen["input"] == [{"role": "user", "content": "hi"}]
    assert gen["output"] == "greet"
    assert gen["usage"] == {"input": 3, "output": 1, "total": 4}
    assert gen["cost"] == {"total": 0.5}
    assert gen["prompt"] == {"name": "intent", "version": 2}
    assert gen["model_parameters"] == {"temperature": 0}
    ret = by_name["kb"]
    assert ret["input"] == "hi"
    assert ret["output"] == [{"id": "d1", "score": 0.9}]
    assert ret["doc_count"] == 1 and ret["top_k"] == 2
    assert ret["metadata"]["store"] == "faq"
    tool = by_name["lookup"]
    assert (tool["input"], tool["output"], tool["metadata"]["tool_name"]) == ({"q": 1}, {"ok": True}, "lookup")
    guard = by_name["guard"]
    assert guard["metadata"] == {"passed": False, "modified": True, "reason": "pii"}
    assert by_name["note"]["metadata"] == {"k": "v"}
    assert by_name["embed"]["metadata"] == {"input_count": 2, "dimensions": 8}
    assert by_name["agent"]["input"] == "hi" and by_name["agent"]["output"] == "bye"
    assert len({r["trace_id"] for r in records}) == 1


async def test_async_context_managers_nest(traced: Traced) -> None:
    async with autotrace.start_chain("chain") as chain:
        async with autotrace.start_retrieval("r"):
            await asyncio.sleep(0)
        chain.set_output(1)
    assert shape(traced.records()) == [("chain", "chain", [("retriever", "r", [])])]


def test_exception_marks_error_and_propagates_unchanged(traced: Traced) -> None:
    class Boom(Exception):
        pass

    error = Boom("bad")
    with pytest.raises(Boom) as raised, autotrace.start_tool("t"):
        raise error
    assert raised.value is error
    (record,) = traced.records()
    assert record["level"] == "ERROR"
    assert record["status_message"] == "Boom: bad"
    assert record["error"] is True


def test_observe_on_every_function_kind(traced: Traced) -> None:
    @autotrace.observe(as_type="chain")
    def outer(x: int, y: int = 2) -> int:
        return inner(x) + y

    @autotrace.observe
    def inner(x: int) -> int:
        return x * 10

    @autotrace.observe(name="agen", as_type="agent")
    async def coroutine(value: str) -> str:
        await asyncio.sleep(0)
        return value.upper()

    @autotrace.observe(as_type="retriever")
    def generator(n: int):
        for i in range(n):
            yield f"p{i}"

    @autotrace.observe(name="stream")
    async def async_generator(n: int):
        for i in range(n):
            yield i
            await asyncio.sleep(0)

    assert outer(1) == 12
    assert asyncio.run(coroutine("a")) == "A"
    assert list(generator(3)) == ["p0", "p1", "p2"]

    async def consume() -> list[int]:
        return [i async for i in async_generator(3)]

    assert asyncio.run(consume()) == [0, 1, 2]
    records = traced.records()
    assert shape(records) == [
        ("chain", "test_observe_on_every_function_kind.<locals>.outer", [
            ("span", "test_observe_on_every_function_kind.<locals>.inner", []),
        ]),
        ("agent", "agen", []),
        ("retriever", "test_observe_on_every_function_kind.<locals>.generator", []),
        ("span", "stream", []),
    ]
    by_name = {r["name"].rsplit(".", 1)[-1]: r for r in records}
    assert by_name["outer"]["input"] == {"x": 1, "y": 2}
    assert by_name["outer"]["output"] == 12
    assert by_name["inner"]["input"] == {"x": 1}
    assert by_name["agen"]["output"] == "A"
    assert by_name["generator"]["output"] == "p0p1p2"
    assert by_name["stream"]["output"] == [0, 1, 2]


def test_generator_closed_early_ends_once_and_nests_children(traced: Traced) -> None:
    @autotrace.observe
    def gen():
        for i in range(10):
            with autotrace.start_span(f"step{i}"):
                pass
            yield i

    iterator = gen()
    assert next(iterator) == 0
    assert next(iterator) == 1
    iterator.close()
    records = traced.records()
    assert shape(records) == [("span", "test_generator_closed_early_ends_once_and_nests_children.<locals>.gen",
                               [("span", "step0", []), ("span", "step1", [])])]
    assert records[0]["output"] == [0, 1]


def test_decorated_errors_propagate_from_every_kind(traced: Traced) -> None:
    @autotrace.traced_tool
    def failing(a: int) -> int:
        raise KeyError(a)

    @autotrace.observe
    async def failing_async() -> None:
        raise ValueError("v")

    @autotrace.observe
    def failing_gen():
        yield 1
        raise RuntimeError("g")

    with pytest.raises(KeyError):
        failing(5)
    with pytest.raises(ValueError):
        asyncio.run(failing_async())
    with pytest.raises(RuntimeError):
        list(failing_gen())
    records = traced.records()
    assert [r["level"] for r in records] == ["ERROR", "ERROR", "ERROR"]
    tool = records[0]
    assert tool["type"] == "tool" and tool["name"] == "failing"
    assert tool["input"] == {"a": 5} and tool["metadata"]["tool_name"] == "failing"


def test_third_party_otel_spans_nest_under_observations(traced: Traced) -> None:
    tracer = trace.get_tracer("third.party")
    with autotrace.start_chain("mine"):
        with tracer.start_as_current_span("theirs") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            with autotrace.start_tool("deep"):
                pass
    assert shape(traced.records()) == [("chain", "mine", [("generation", "theirs", [("tool", "deep", [])])])]


def test_input_mutation_after_the_call_does_not_change_the_record(traced: Traced) -> None:
    messages = [{"role": "user", "content": "one"}]
    with autotrace.start_generation("g", input=messages):
        pass
    messages.append({"role": "assistant", "content": "two"})
    (record,) = traced.records()
    assert record["input"] == [{"role": "user", "content": "one"}]


def test_content_capture_off_per_block(traced: Traced) -> None:
    with autotrace.content_capture(False):
        with autotrace.start_generation("g", input="secret", model="m") as gen:
            gen.set_output("also secret")
    (record,) = traced.records()
    assert record["input"] is None and record["output"] is None and record["model"] == "m"


def test_updates_after_end_are_ignored_and_end_is_idempotent(traced: Traced) -> None:
    obs = autotrace.start_span("manual", input=1)
    obs.end()
    obs.set_output(2)
    obs.end()
    (record,) = traced.records()
    assert record["input"] == 1 and record["output"] is None


def test_threads_keep_their_own_parents(traced: Traced) -> None:
    def worker(i: int) -> None:
        with autotrace.start_chain(f"root{i}"):
            with autotrace.start_tool(f"tool{i}"):
                pass

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = traced.records()
    trees = sorted(shape(records))
    assert trees == [("chain", f"root{i}", [("tool", f"tool{i}", [])]) for i in range(4)]


def test_observations_work_without_install_on_a_plain_provider() -> None:
    autotrace.uninstall()
    with autotrace.start_generation("g", model="m") as gen:
        gen.set_output("x")
    assert gen.ended and gen.fields["output"] == "x"


def test_generator_gets_sent_and_thrown_values_like_the_undecorated_one(traced: Traced) -> None:
    log: list[str] = []

    def counter():
        i = 0
        while True:
            try:
                sent = yield i
                log.append(f"sent {sent}")
            except KeyError:
                i = 100
            except ValueError:
                return "stopped"
            i += 1

    @contextmanager
    @autotrace.observe(name="transaction")
    def transaction():
        try:
            yield "conn"
        except ValueError:
            log.append("rollback")

    stream = autotrace.observe(name="counter")(counter)()
    assert (next(stream), stream.send("a"), stream.throw(KeyError()), next(stream)) == (0, 1, 101, 102)
    with pytest.raises(StopIteration) as stopped:
        stream.throw(ValueError())
    assert stopped.value.value == "stopped"
    with transaction() as conn:  # the generator handles the error: suppressed, as without the decorator
        assert conn == "conn"
        raise ValueError("boom")
    assert log == ["sent a", "sent None", "rollback"]
    records = traced.records()
    assert shape(records) == [("span", "counter", []), ("span", "transaction", [])]
    counted, transacted = records
    assert counted["output"] == [0, 1, 101, 102] and counted["level"] == "DEFAULT"
    assert transacted["output"] == "conn" and transacted["level"] == "DEFAULT"


def test_generator_close_and_unhandled_throw_reach_the_user_generator(traced: Traced) -> None:
    log: list[str] = []

    @autotrace.observe
    def closing():
        try:
            yield 1
            yield 2
        except GeneratorExit:
            log.append("closing")
            raise
        finally:
            log.append("finally")

    first, second = closing(), closing()
    next(first)
    first.close()
    next(second)
    error = RuntimeError("thrown")
    with pytest.raises(RuntimeError) as raised:
        second.throw(error)
    assert raised.value is error
    assert log == ["closing", "finally", "finally"]
    # closed by its reader: interrupted, with what it yielded; an exception thrown in: failed
    assert [(r["output"], r["level"], r["status_message"]) for r in traced.records()] == [
        ([1], "WARNING", STREAM_CLOSED), (None, "ERROR", "RuntimeError: thrown")]


def test_async_generator_gets_asend_and_athrow_like_the_undecorated_one(traced: Traced) -> None:
    log: list[str] = []

    @autotrace.observe(name="counter")
    async def counter():
        i = 0
        while True:
            try:
                sent = yield i
                log.append(f"sent {sent}")
            except KeyError:
                with autotrace.start_span("recover"):
                    await asyncio.sleep(0)
                i = 100
            i += 1

    @asynccontextmanager
    @autotrace.observe(name="transaction")
    async def transaction():
        try:
            yield "conn"
        except ValueError:
            log.append("rollback")

    async def scenario() -> tuple[int, ...]:
        stream = counter()
        values = (await anext(stream), await stream.asend("a"), await stream.athrow(KeyError()))
        assert trace.get_current_span() is trace.INVALID_SPAN  # the caller's context between items
        await stream.aclose()
        async with transaction():
            raise ValueError("boom")
        return values

    assert asyncio.run(scenario()) == (0, 1, 101)
    assert log == ["sent a", "rollback"]
    records = traced.records()
    assert shape(records) == [("span", "counter", [("span", "recover", [])]), ("span", "transaction", [])]
    counted, _, transacted = records
    assert counted["output"] == [0, 1, 101] and counted["level"] == "WARNING"  # closed (aclose) by its reader
    assert transacted["output"] == "conn" and transacted["level"] == "DEFAULT"


def test_observe_on_top_of_staticmethod_and_classmethod(traced: Traced) -> None:
    class Kinds:
        @autotrace.observe
        @staticmethod
        def double(x: int) -> int:
            return x * 2

        @autotrace.observe(as_type="chain")
        @classmethod
        def named(cls, x: int) -> tuple[str, int]:
            return cls.__name__, x

        @autotrace.traced_tool
        @classmethod
        async def fetch(cls, key: str) -> str:
            return f"{cls.__name__}:{key}"

    assert (Kinds.double(3), Kinds().double(4), Kinds.named(5), Kinds().named(6)) == (6, 8, ("Kinds", 5),
                                                                                      ("Kinds", 6))
    assert asyncio.run(Kinds.fetch("k")) == "Kinds:k"
    assert isinstance(inspect.getattr_static(Kinds, "double"), staticmethod)
    assert isinstance(inspect.getattr_static(Kinds, "named"), classmethod)
    records = traced.records()
    prefix = "test_observe_on_top_of_staticmethod_and_classmethod.<locals>.Kinds"
    assert [(r["type"], r["name"], r["input"], r["output"]) for r in records] == [
        ("span", f"{prefix}.double", {"x": 3}, 6),
        ("span", f"{prefix}.double", {"x": 4}, 8),
        ("chain", f"{prefix}.named", {"x": 5}, ["Kinds", 5]),
        ("chain", f"{prefix}.named", {"x": 6}, ["Kinds", 6]),
        ("tool", "fetch", {"key": "k"}, "Kinds:k"),
    ]



_THROWN = {"throw KeyError": KeyError, "throw ValueError": ValueError, "throw GeneratorExit": GeneratorExit}
_OPERATIONS = st.lists(st.sampled_from(["next", "send", "close", *_THROWN]), max_size=8)


def _protocol(log: list[Any]) -> Any:
    i = 0
    try:
        while i < 4:
            try:
                log.append(("sent", (yield i)))
            except KeyError:
                log.append("handled")
            i += 1
        return "done"
    finally:
        log.append("finally")


async def _async_protocol(log: list[Any]) -> Any:
    i = 0
    try:
        while i < 4:
            try:
                log.append(("sent", (yield i)))
            except KeyError:
                log.append("handled")
            i += 1
    finally:
        log.append("finally")


def _drive(generator: Any, operations: list[str]) -> list[Any]:
    """What each operation on a generator returned or raised."""
    outcomes: list[Any] = []
    for operation in operations:
        try:
            if operation == "close":
                result = generator.close()
            elif operation in _THROWN:
                result = generator.throw(_THROWN[operation]())
            else:
                result = generator.send("v" if operation == "send" else None)
            outcomes.append(("ok", result))
        except StopIteration as stop:
            outcomes.append(("stop", stop.value))
        except BaseException as error:
            outcomes.append(("raised", type(error).__name__))
    return outcomes


async def _async_drive(generator: Any, operations: list[str]) -> list[Any]:
    """What each operation on an async generator returned or raised."""
    outcomes: list[Any] = []
    for operation in operations:
        try:
            if operation == "close":
                result = await generator.aclose()
            elif operation in _THROWN:
                result = await generator.athrow(_THROWN[operation]())
            else:
                result = await generator.asend("v" if operation == "send" else None)
            outcomes.append(("ok", result))
        except StopAsyncIteration:
            outcomes.append(("stop", None))
        except BaseException as error:
            outcomes.append(("raised", type(error).__name__))
    return outcomes


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=_OPERATIONS)
def test_decorated_generators_behave_like_undecorated_ones(traced: Traced, operations: list[str]) -> None:
    def run(generator_function: Any) -> tuple[list[Any], list[Any]]:
        log: list[Any] = []
        return _drive(generator_function(log), operations), log

    async def run_async(generator_function: Any) -> tuple[list[Any], list[Any]]:
        log: list[Any] = []
        generator = generator_function(log)
        try:
            return await _async_drive(generator, operations), log
        finally:
            await generator.aclose()

    assert run(autotrace.observe(_protocol)) == run(_protocol)
    assert asyncio.run(run_async(autotrace.observe(_async_protocol))) == asyncio.run(run_async(_async_protocol))


def test_a_bookkeeping_failure_does_not_change_the_generator(traced: Traced, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(items: list[Any]) -> Any:
        raise RuntimeError("autotrace bug")

    monkeypatch.setattr("autotrace.decorators._stream_output", broken)

    @autotrace.observe
    def gen():
        yield 1
        return "done"

    generator = gen()
    assert next(generator) == 1
    with pytest.raises(StopIteration) as stopped:
        next(generator)
    assert stopped.value.value == "done"
    assert autotrace.stats()["internal_errors.observe.end"] == 1
    assert [r["name"] for r in traced.records()] == [  # still ended, once
        "test_a_bookkeeping_failure_does_not_change_the_generator.<locals>.gen"]
