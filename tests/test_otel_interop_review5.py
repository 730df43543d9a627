"""autotrace beside the Langfuse SDK when autotrace sends nothing to Langfuse (review 5): the SDK's
client keeps exporting what it did without autotrace (its own spans and other instrumentations'),
never autotrace's, which leave the process only as autotrace exports them. A fresh interpreter per
case: OpenTelemetry sets one global tracer provider per process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import autotrace
from autotrace import _langfuse_sdk
from tests.helpers import isolated_env

_LOCAL_ONLY_BESIDE_THE_SDK = """
import json, sys
from opentelemetry import trace
from autotrace.testing.otlp_receiver import OtlpReceiver
import autotrace

with OtlpReceiver() as lf:
    from langfuse import Langfuse, observe

    sdk = Langfuse(public_key="pk-lf-2", secret_key="sk-lf-2", base_url=lf.endpoint)
    autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=(), export_interval=0.05)
    other = trace.get_tracer("openinference.instrumentation.openai")

    @observe(name="lf-obs")
    def work(text):
        with other.start_as_current_span("ChatCompletion", attributes={"gen_ai.request.model": "gpt-4o"}):
            pass
        with autotrace.start_generation("at-gen", model="gpt-4o") as generation:
            generation.set_input(text)
        return "ok"

    work("mail jane.doe@example.com")
    sdk.flush()
    autotrace.flush(10)
    store = autotrace.local_store()
    print(json.dumps({"langfuse": sorted([s.scope_name, s.name] for s in lf.spans),
                      "local": sorted(o["name"] for o in store.observations()),
                      "stats": {k: v for k, v in autotrace.stats().items() if k.startswith("langfuse_sdk")}}))
"""


def _run(tmp_path: Path, script: str) -> dict[str, Any]:
    env = isolated_env(tmp_path)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "t.db")], capture_output=True, text=True,
                          timeout=120, env={**env, "AUTOTRACE_HOME": str(tmp_path / "home")}, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_with_autotrace_exporting_locally_the_sdk_keeps_exporting_other_instrumentations_spans(
        tmp_path: Path) -> None:
    """autotrace with no Langfuse (the local store only): the SDK's client exported only its own
    spans, so another instrumentation's LLM span it sent without autotrace never reached Langfuse
    (autotrace does not send it there). Now it does; autotrace's own generation still does not
    (it would leave unredacted), and every span is in the local store."""
    report = _run(tmp_path, _LOCAL_ONLY_BESIDE_THE_SDK)
    assert report["langfuse"] == [["langfuse-sdk", "lf-obs"], ["openinference.instrumentation.openai", "ChatCompletion"]]
    assert report["local"] == ["ChatCompletion", "at-gen", "lf-obs"]
    assert report["stats"] == {"langfuse_sdk_exporting": 1}


def test_a_forked_child_uninstalls_though_a_parent_thread_was_judging_sdk_processors(tmp_path: Path) -> None:
    """A thread of the parent was judging a provider's processors (a first span after a Langfuse
    client was made) when another forked: the child's uninstall, at its exit, waited for good for
    the lock that thread held, which the child does not have."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=())
    holding, done_judging = threading.Event(), threading.Event()

    def judging() -> None:
        with _langfuse_sdk._lock:
            holding.set()
            done_judging.wait(10)

    thread = threading.Thread(target=judging)
    thread.start()
    assert holding.wait(10)
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            autotrace.uninstall(timeout=1.0)
            code = 0
        finally:
            os._exit(code)
    done_judging.set()
    thread.join()
    deadline = time.monotonic() + 30
    while (ended := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    if ended[0] == 0:  # still waiting: not to be left behind
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert ended == (pid, 0)
