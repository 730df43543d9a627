"""User code that autotrace runs on its own export threads (a redaction hook on the pipeline thread,
a credentials resolver on an export worker) and that itself makes traced calls, with the real
openai SDK against the loopback fake server: its spans are not traced (they would feed the pipeline
with spans of no tenant, each redacted by the same hook again), and a flush there returns at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from opentelemetry import context as otel_context

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.runtime import state
from autotrace.testing.fake_openai import FakeOpenAI
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import Traced

_SUPPRESSED = otel_context._SUPPRESS_INSTRUMENTATION_KEY
#: How many calls the tests' hooks make at most (a bound for the old code, where each call's span
#: came back to the hook, which called again, without end).
_AT_MOST = 5


def _classify(client: openai.OpenAI, text: str) -> str | None:
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": text}])
    return reply.choices[0].message.content


def test_a_redaction_hook_that_calls_openai_is_not_traced_nor_fed_its_own_spans(
        tmp_path: Path, fake: FakeOpenAI, client: openai.OpenAI) -> None:
    """A hook that asks an LLM whether a span name is sensitive: its calls are made and answered,
    but their spans are left out, counted (before: each call's span reached the pipeline with no
    tenant, its name went to the hook, which called again: a loop without end)."""
    seen: list[tuple[str | None, bool]] = []

    def llm_policy(key: str, value: Any, span_type: str) -> Any:
        if key == "span.name" and len(seen) < _AT_MOST:
            seen.append((_classify(client, f"is {value!r} sensitive?"), bool(otel_context.get_value(_SUPPRESSED))))
        return value

    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("openai",),
                      export_interval=0.05, redact=[llm_policy])
    with autotrace.tenant("acme"), autotrace.start_span("checkout"):
        pass
    records = Traced(tmp_path / "t.db").records()
    assert [(r["name"], r["tenant"]) for r in records] == [("checkout", "acme")]
    assert seen == [("echo: is 'checkout' sensitive?", True)]  # OTel instrumentations see it suppressed
    assert autotrace.stats() == {"spans_dropped.inside_export": 1, "spans_exported": 1,
                                 "spans_exported.local": 1}


def test_spans_a_hook_opens_are_left_out_whatever_tenant_it_names(tmp_path: Path) -> None:
    made: list[str] = []

    def audit(key: str, value: Any, span_type: str) -> Any:
        if key == "span.name" and len(made) < _AT_MOST:
            with autotrace.tenant("other"), autotrace.start_span("audit") as span:
                span.set_output(value)
                made.append(span.id)
        return value

    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(),
                      export_interval=0.05, redact=[audit])
    with autotrace.tenant("acme"), autotrace.start_span("checkout"):
        pass
    records = Traced(tmp_path / "t.db").records()
    assert [(r["name"], r["tenant"]) for r in records] == [("checkout", "acme")]
    assert len(made) == 1
    assert autotrace.stats()["spans_dropped.inside_export"] == 1


def test_a_credentials_resolver_that_calls_openai_and_flushes(fake: FakeOpenAI, client: openai.OpenAI) -> None:
    """A resolver that fetches the tenant's keys through a traced call and flushes: its call's span
    is left out (before: it went to the default project, another tenant's, as a span of no tenant),
    and its flush says False at once rather than hold the lookup, which the flush waits for, until
    its own timeout (before: the application's flush timed out meanwhile)."""
    flushed: list[bool] = []

    with OtlpReceiver() as rx:
        def secret_store(tenant: str) -> Credentials:
            _classify(client, f"keys of {tenant}")
            flushed.append(autotrace.flush(20.0))
            return Credentials(f"pk-{tenant}", f"sk-{tenant}", host=rx.endpoint)

        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-default", secret_key="sk-lf-default",
                          unknown_tenant="default", credentials=secret_store, integrations=("openai",),
                          export_interval=0.05)
        with autotrace.tenant("acme"), autotrace.start_span("checkout"):
            pass
        assert autotrace.flush(5.0)
        assert flushed == [False]
        assert [(s.name, s.attributes["autotrace.tenant"]) for s in rx.spans] == [("checkout", "acme")]
        assert {r.headers["authorization"] for r in rx.requests} == {Credentials("pk-acme", "sk-acme")
                                                                    .authorization_header()}
    assert autotrace.stats()["spans_dropped.inside_export"] == 1


def _export_threads(before: frozenset[threading.Thread] = frozenset()) -> list[str]:
    """The export threads alive now, but those of ``before`` (an earlier test's, still stuck on a slow
    endpoint) and the calling one."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("autotrace-export") and t.is_alive()
                  and t is not threading.current_thread() and t not in before)


def test_uninstall_from_a_redaction_hook_stops_every_export_thread(tmp_path: Path) -> None:
    """A hook that uninstalls (a policy that turns tracing off): the shutdown completes, its export
    threads end (before: it tried to join the pipeline thread it ran on, raised, counted an internal
    error and left the export threads and the store running)."""
    left: list[list[str]] = []
    before = frozenset(threading.enumerate())

    def off_switch(key: str, value: Any, span_type: str) -> Any:
        if key == "span.name" and not left:
            autotrace.uninstall(2.0)
            left.append(_export_threads(before))
        return value

    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(),
                      export_interval=0.05, redact=[off_switch])
    with autotrace.start_span("s"):
        pass
    assert _wait(lambda: bool(left))
    assert left == [[]]
    assert state.pipeline is None
    assert "internal_errors.shutdown" not in autotrace.stats()


def test_uninstall_from_a_credentials_resolver_stops_the_other_export_threads() -> None:
    left: list[list[str]] = []
    before = frozenset(threading.enumerate())

    def secret_store(tenant: str) -> None:
        autotrace.uninstall(2.0)
        left.append(_export_threads(before))
        return None

    autotrace.install(langfuse_host="http://127.0.0.1:9", credentials=secret_store, integrations=(),
                      export_interval=0.05)
    with autotrace.tenant("acme"), autotrace.start_span("s"):
        pass
    assert _wait(lambda: bool(left))
    assert left == [[]]
    assert "internal_errors.shutdown" not in autotrace.stats()


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
