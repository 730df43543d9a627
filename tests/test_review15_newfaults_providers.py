"""Faults around the application's tracer provider joined to autotrace's global one (review 15):
its processors failing, autotrace's own steps failing, joins from many threads, a fork mid-join,
and the spans of autotrace's export threads. Each case runs in a fresh interpreter: OpenTelemetry
sets one global tracer provider per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import isolated_env

_PRELUDE = """
import json, os, sys, threading
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import autotrace
from autotrace import _providers

def app_provider(*processors, **attributes):
    provider = TracerProvider(resource=Resource.create(attributes))
    exporter = InMemorySpanExporter()
    for processor in processors:
        provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter

def names(exporter):
    return sorted(span.name for span in exporter.get_finished_spans())

def stats():
    return {k: v for k, v in autotrace.stats().items() if k.startswith(("provider_", "internal_errors"))}
"""

_FAILING_PROCESSOR = _PRELUDE + """
class Failing(SpanProcessor):
    def on_start(self, span, parent_context=None):
        if sys.argv[1] == "on_start":
            raise RuntimeError("app on_start")
    def on_end(self, span):
        if sys.argv[1] == "on_end":
            raise RuntimeError("app on_end")

autotrace.install(integrations=(), unknown_tenant="default", local_store="on", local_store_path=sys.argv[2],
                  export_interval=0.05)
provider, exporter = app_provider(Failing())
trace.set_tracer_provider(provider)

@autotrace.observe
def add(x):
    return x + 1

report = {"observed": add(1)}
try:
    with autotrace.start_span("explicit"):
        report["explicit"] = "ran"
except RuntimeError as exc:
    report["explicit"] = str(exc)
try:
    with trace.get_tracer("app").start_as_current_span("app-span"):
        pass
    report["app_span"] = "ran"
except RuntimeError as exc:
    report["app_span"] = str(exc)
report["current"] = trace.get_current_span().get_span_context().is_valid
autotrace.flush(10)
import sqlite3
report["stored"] = sorted(r[0] for r in sqlite3.connect(sys.argv[2]).execute("select name from observations"))
report["stats"] = stats()
print(json.dumps(report))
"""


def _run(tmp_path: Path, script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120,
                          env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("where", ["on_start", "on_end"])
def test_an_application_processor_that_raises_leaves_autotraces_calls_and_spans_as_they_are(
        tmp_path: Path, where: str) -> None:
    """Its error on one of autotrace's spans is counted, logged once: the observed call returns, the
    explicit span runs, both are recorded. The application's own span raises as it would on its own
    global provider. Before: ``start_span`` raised the application's error (on_start), and the
    observed call's span was lost or ended half-way (an internal error)."""
    report = _run(tmp_path, _FAILING_PROCESSOR, where, str(tmp_path / "t.db"))
    assert report == {
        "observed": 2, "explicit": "ran", "app_span": f"app {where}", "current": False,
        "stored": ["add", "app-span", "explicit"] if where == "on_end" else ["add", "explicit"],
        "stats": {"provider_joined": 1, "provider_app_errors": 2},
    }


_HOOK = _PRELUDE + """
asked = []
def policy(key, value, span_type):
    if key == "span.name" and len(asked) < 3:
        asked.append(value)
        with autotrace.start_span("hook-" + str(len(asked))):
            pass
    return value

autotrace.install(integrations=(), unknown_tenant="default", local_store="on", local_store_path=sys.argv[1],
                  export_interval=0.05, redact=[policy])
provider, exporter = app_provider()
trace.set_tracer_provider(provider)
with autotrace.start_span("checkout"):
    pass
autotrace.flush(10)
autotrace.flush(10)
print(json.dumps({"application": names(exporter), "hook_ran": bool(asked)}))
"""


def test_spans_started_on_autotraces_export_threads_never_reach_the_applications_exporter(tmp_path: Path) -> None:
    """A redaction hook's span exists only because autotrace runs the hook: the application's
    exporter gets the application's work only. Before: it got every hook span."""
    assert _run(tmp_path, _HOOK, str(tmp_path / "t.db")) == {"application": ["checkout"], "hook_ran": True}


_RENAME_FAILS = _PRELUDE + """
def failing(provider, new):
    raise RuntimeError("rename failed")

autotrace.install(integrations=(), unknown_tenant="default")
_providers.rename = failing
provider, exporter = app_provider(**{"service.name": "checkout"})
trace.set_tracer_provider(provider)
trace.set_tracer_provider(provider)
with trace.get_tracer("app").start_as_current_span("request"):
    pass
print(json.dumps({"application": names(exporter), "joined": len(_providers._joined), "stats": stats()}))
"""


def test_a_failing_rename_still_joins_the_provider(tmp_path: Path) -> None:
    """The resource is the cosmetic part: the application's exporter still gets its spans. Before:
    the provider was noted as joined without its processors, and OpenTelemetry refused it."""
    assert _run(tmp_path, _RENAME_FAILS) == {
        "application": ["request"], "joined": 1,
        "stats": {"provider_joined": 1, "internal_errors.provider_rename": 1}}


_CONCURRENT = _PRELUDE + """
autotrace.install(integrations=(), unknown_tenant="default")
original = _providers.rename
both = threading.Barrier(2, timeout=2)

def rename(provider, new):
    try:  # the two joins meet here when nothing keeps them apart
        both.wait()
    except threading.BrokenBarrierError:
        pass
    original(provider, new)

_providers.rename = rename
threads = [threading.Thread(target=trace.set_tracer_provider, args=(app_provider(**{key: "yes"})[0],))
           for key in ("team.a", "team.b")]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
attributes = trace.get_tracer_provider().resource.attributes
print(json.dumps({"attributes": sorted(k for k in attributes if k.startswith("team.")), "stats": stats()}))
"""


def test_providers_joined_from_two_threads_at_once_keep_both_resources(tmp_path: Path) -> None:
    """Before: each join renamed from the resource it read before the other's rename, and the last
    one lost the other's attributes."""
    assert _run(tmp_path, _CONCURRENT) == {"attributes": ["team.a", "team.b"], "stats": {"provider_joined": 2}}


_FORK = _PRELUDE + """
import signal
autotrace.install(integrations=(), unknown_tenant="default")
_providers._lock.acquire()  # as another thread joining a provider at the moment of the fork
pid = os.fork()
if pid == 0:
    signal.alarm(10)
    provider, exporter = app_provider()
    trace.set_tracer_provider(provider)
    with trace.get_tracer("app").start_as_current_span("in-child"):
        pass
    os._exit(0 if names(exporter) == ["in-child"] else 3)
_providers._lock.release()
_, status = os.waitpid(pid, 0)
print(json.dumps({"child": os.waitstatus_to_exitcode(status)}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_during_a_join_joins_its_own_provider(tmp_path: Path) -> None:
    """Before: the child's copy of the lock was held by a thread of the parent; its own provider's
    join waited forever (killed by the alarm)."""
    assert _run(tmp_path, _FORK) == {"child": 0}


_ENDING = _PRELUDE + """
class Ending(SpanProcessor):
    seen = []
    def _on_ending(self, span):
        Ending.seen.append(span.name)

autotrace.install(integrations=(), unknown_tenant="default")
provider, exporter = app_provider(Ending())
trace.set_tracer_provider(provider)
with trace.get_tracer("app").start_as_current_span("request"), autotrace.start_span("step"):
    pass
print(json.dumps({"ending": Ending.seen, "ended": names(exporter)}))
"""


def test_the_applications_processors_are_told_as_a_span_is_ending(tmp_path: Path) -> None:
    """OpenTelemetry tells a global provider's processors as a span is ending (``_on_ending``, to set
    last attributes): a joined provider's are told too. Before: never."""
    assert _run(tmp_path, _ENDING) == {"ending": ["step", "request"], "ended": ["request", "step"]}
