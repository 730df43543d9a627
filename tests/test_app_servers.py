"""``autotrace run`` under real application servers and process models, for real: gunicorn (pre-fork,
with and without ``--preload``), uvicorn (one process, and ``--workers`` spawned by multiprocessing),
a program that forks itself, and ``multiprocessing`` with the fork and spawn start methods. Each app
calls the loopback fake OpenAI server with the real SDK inside a span; the servers are stopped as an
operator would (SIGTERM, Ctrl-C), then the local store must hold every request's trace exactly once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from autotrace.export.local_store import LocalStore
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import isolated_env

BIN = Path(sys.executable).parent
REQUESTS = 10

FLASK_APP = """
import os
import autotrace, openai
from flask import Flask, jsonify

app = Flask(__name__)
client = openai.OpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="x", max_retries=0)

@app.route("/ask/<rid>")
def ask(rid):
    with autotrace.tenant("acme"), autotrace.start_span(f"request-{rid}"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": rid}])
    return jsonify(pid=os.getpid())

@app.route("/stats")
def stats():
    return jsonify(pid=os.getpid(), stats=autotrace.stats())
"""

FASTAPI_APP = """
import os
import autotrace, autotrace.runtime, openai
from fastapi import FastAPI

app = FastAPI()
client = openai.AsyncOpenAI(base_url=os.environ["FAKE_OPENAI_URL"], api_key="x", max_retries=0)

@app.get("/ask/{rid}")
async def ask(rid: str):
    with autotrace.tenant("acme"), autotrace.start_span(f"request-{rid}"):
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": rid}])
    return {"pid": os.getpid()}

@app.get("/stats")
def stats():
    installed = autotrace.runtime.state.settings is not None
    return {"pid": os.getpid(), "installed": installed, "stats": autotrace.stats()}
"""

# The application's own sitecustomize runs before autotrace installs, so its atexit hook runs after
# autotrace's exit export: the counters each process ends with, written where the test reads them.
STATS_AT_EXIT = """
import atexit, json, os

def _dump():
    import autotrace
    with open(os.path.join(os.environ["STATS_DIR"], f"stats-{os.getpid()}.json"), "w") as out:
        json.dump(autotrace.stats(), out)

atexit.register(_dump)
"""


@pytest.fixture(scope="module")
def fake() -> Any:
    with FakeOpenAI() as server:
        yield server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(tmp_path: Path, fake: FakeOpenAI, **extra: str) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(STATS_AT_EXIT)
    (tmp_path / "stats").mkdir(exist_ok=True)
    env = isolated_env(tmp_path)
    env.update({"FAKE_OPENAI_URL": fake.base_url, "AUTOTRACE_LOCAL_STORE_PATH": str(tmp_path / "traces.db"),
                "AUTOTRACE_SERVICE_NAME": "shop", "AUTOTRACE_EXPORT_INTERVAL": "30",  # only the exit exports
                "STATS_DIR": str(tmp_path / "stats"), "PYTHONPATH": f"{tmp_path}{os.pathsep}{site}",
                "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    env.update(extra)
    return env


def _get(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return dict(json.loads(response.read()))


def _serve(tmp_path: Path, fake: FakeOpenAI, app: str, command: list[str], port: int,
           stop: signal.Signals = signal.SIGTERM) -> tuple[int, str, list[dict[str, Any]]]:
    """Start ``autotrace run -- command``, send the requests, stop it by ``stop``; its exit code,
    output and the /stats answers of its workers seen while it ran."""
    (tmp_path / "app.py").write_text(textwrap.dedent(app))
    server = subprocess.Popen([str(BIN / "autotrace"), "run", "--", *command], env=_env(tmp_path, fake),
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(port, "/stats")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.communicate()[0]
                time.sleep(0.05)
        for i in range(REQUESTS):
            _get(port, f"/ask/r{i}")
        seen = [_get(port, "/stats") for _ in range(4)]
        server.send_signal(stop)
        output = server.communicate(timeout=30)[0]
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    return server.returncode, output, seen


def _assert_every_request_once(tmp_path: Path, extra_spans: int = 0) -> list[dict[str, Any]]:
    """One trace per request: its span with the SDK's generation right under it, none twice."""
    records = LocalStore(tmp_path / "traces.db", read_only=True).observations()
    ours = [r for r in records if r["name"].startswith("request-")]
    assert sorted(r["name"] for r in ours) == sorted(f"request-r{i}" for i in range(REQUESTS))
    assert len({r["trace_id"] for r in ours}) == REQUESTS
    by_parent = {r["parent_id"]: r for r in records if r["type"] == "generation"}
    for span in ours:
        generation = by_parent[span["id"]]
        assert (span["type"], span["service"], span["tenant"], span["level"]) == ("span", "shop", "acme", "DEFAULT")
        assert (generation["name"], generation["trace_id"], generation["model"], generation["service"],
                generation["tenant"]) == ("openai.chat", span["trace_id"], "gpt-4o-mini", "shop", "acme")
        assert generation["usage"]["total"] > 0
    assert len(by_parent) == REQUESTS
    assert len(records) == 2 * REQUESTS + extra_spans
    return records


def _no_drops(stats: dict[str, int]) -> bool:
    return not any("dropped" in name or name.startswith("internal_errors") for name in stats)


@pytest.mark.parametrize("preload", [False, True], ids=["fork-then-import", "preload"])
def test_gunicorn_sync_workers_export_every_request_once_and_lose_nothing_at_sigterm(
        tmp_path: Path, fake: FakeOpenAI, preload: bool) -> None:
    port = _free_port()
    command = ["gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--no-control-socket",
               *(["--preload"] if preload else []), "app:app"]
    code, output, seen = _serve(tmp_path, fake, FLASK_APP, command, port)
    assert code == 0, output
    assert "Shutting down: Master" in output and "autotrace:" not in output, output  # drops are logged
    _assert_every_request_once(tmp_path)
    assert all(_no_drops(answer["stats"]) for answer in seen)
    final = [json.loads(p.read_text()) for p in (tmp_path / "stats").glob("stats-*.json")]
    assert len(final) == 3  # the master and both workers ran their exit export, then this hook
    assert all(_no_drops(stats) for stats in final), final
    assert sum(stats.get("spans_exported.local", 0) for stats in final) == 2 * REQUESTS


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_one_uvicorn_process_loses_nothing_and_exits_as_without_autotrace(
        tmp_path: Path, fake: FakeOpenAI, stop: signal.Signals) -> None:
    port = _free_port()
    code, output, seen = _serve(tmp_path, fake, FASTAPI_APP, ["uvicorn", "--port", str(port), "app:app"], port, stop)
    # uvicorn re-raises a SIGTERM once it has shut down: ended by it, as without autotrace (after
    # autotrace's handler exported); Ctrl-C reaches Python's own handler, which uvicorn ends with 0
    assert code == (-signal.SIGTERM if stop == signal.SIGTERM else 0), output
    assert "Application shutdown complete." in output and "autotrace:" not in output, output
    # FastAPI's own spans: four per request (route, dependencies, endpoint, serialisation); /stats has
    # only those four, and was asked once more when the server came up
    records = _assert_every_request_once(tmp_path, extra_spans=4 * REQUESTS + 4 * (len(seen) + 1))
    assert {r["name"] for r in records if r["name"].startswith("GET ")} == {"GET /ask/{rid}", "GET /stats"}
    assert all(_no_drops(answer["stats"]) for answer in seen)


def test_uvicorn_workers_spawned_by_multiprocessing_are_traced(tmp_path: Path, fake: FakeOpenAI) -> None:
    port = _free_port()
    code, output, seen = _serve(tmp_path, fake, FASTAPI_APP,
                                ["uvicorn", "--workers", "2", "--port", str(port), "app:app"], port)
    assert code == 0, output
    assert "Stopping parent process" in output and "autotrace:" not in output, output
    _assert_every_request_once(tmp_path, extra_spans=4 * REQUESTS + 4 * (len(seen) + 1))
    # installed in each worker that answered (a worker that served no request yet has no counters)
    assert all(answer["installed"] and _no_drops(answer["stats"]) for answer in seen)


FORKING_SCRIPT = """
import os, sys, time
import autotrace
from autotrace.runtime import state

def child(name, end, linger):
    for i in range(3):
        with autotrace.start_span(f"{name}-{i}"):
            pass
    time.sleep(linger)  # a child that runs for a while: its export threads send on their own
    sys.exit(0) if end == "sys.exit" else os._exit(0)

with autotrace.start_span("parent-before"):
    pass
for name, end, linger in (("exits", "sys.exit", 0), ("quits", "os._exit", 0), ("lingers", "os._exit", 0.6)):
    pid = os.fork()
    if pid == 0:
        child(name, end, linger)
    assert os.waitpid(pid, 0)[1] == 0
with autotrace.start_span("parent-after"):
    pass
"""


def test_a_forked_child_exports_on_sys_exit_and_by_its_own_threads_but_os_exit_loses_the_rest(
        tmp_path: Path, fake: FakeOpenAI) -> None:
    (tmp_path / "forks.py").write_text(FORKING_SCRIPT)
    env = _env(tmp_path, fake, AUTOTRACE_EXPORT_INTERVAL="0.2")
    done = subprocess.run([str(BIN / "autotrace"), "run", "--", sys.executable, "forks.py"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "autotrace:" not in done.stderr, done.stderr
    names = Counter(r["name"] for r in LocalStore(tmp_path / "traces.db", read_only=True).observations())
    # "quits" ended by os._exit before its first export: no atexit, nothing of it can be sent
    assert names == Counter(["parent-before", "parent-after", *(f"{n}-{i}" for n in ("exits", "lingers")
                                                                 for i in range(3))])
    final = {p.name: json.loads(p.read_text()) for p in (tmp_path / "stats").glob("stats-*.json")}
    assert len(final) == 2  # the parent and the sys.exit child: os._exit runs no exit hook at all
    assert all(_no_drops(stats) for stats in final.values())
    assert sorted(stats.get("spans_exported.local", 0) for stats in final.values()) == [2, 3]  # not re-sent


MULTIPROCESSING_SCRIPT = """
import multiprocessing, sys
import autotrace
from autotrace.runtime import state

def work(tag):
    with autotrace.start_span(f"child-{tag}"):
        pass
    return state.settings is not None

if __name__ == "__main__":
    context = multiprocessing.get_context(sys.argv[1])
    with autotrace.start_span("parent"):
        process = context.Process(target=work, args=("process",))
        process.start()
        process.join()
        with context.Pool(2) as pool:  # leaving it terminates the workers (SIGTERM), often as they exit
            traced = pool.map(work, ["pool-a", "pool-b"])
        pool = context.Pool(1)
        pool.map(work, ["pool-closed"])
        pool.close()
        pool.join()
    print(process.exitcode, traced)
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("subprocesses", ["", "true"], ids=["default", "trace-subprocesses"])
def test_multiprocessing_children_are_the_programs_own_and_are_traced(
        tmp_path: Path, fake: FakeOpenAI, method: str, subprocesses: str) -> None:
    (tmp_path / "mp.py").write_text(MULTIPROCESSING_SCRIPT)
    env = _env(tmp_path, fake, AUTOTRACE_TRACE_SUBPROCESSES=subprocesses)
    done = subprocess.run([str(BIN / "autotrace"), "run", "--", sys.executable, "mp.py", method], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "0 [True, True]\n"), done.stderr
    assert "autotrace:" not in done.stderr, done.stderr
    records = LocalStore(tmp_path / "traces.db", read_only=True).observations()
    assert sorted(r["name"] for r in records) == [
        "child-pool-a", "child-pool-b", "child-pool-closed", "child-process", "parent"]
    # a spawned Process starts a trace of its own, a forked one continues the parent's; a pool's task
    # carries its submitter's span to the worker (which starts with none: it serves every submitter)
    parent = next(r for r in records if r["name"] == "parent")
    same_trace = {r["name"] for r in records if r["trace_id"] == parent["trace_id"]}
    pooled = {"parent", "child-pool-a", "child-pool-b", "child-pool-closed"}
    assert same_trace == (pooled | {"child-process"} if method == "fork" else pooled)


SIGTERM_AT_EXIT = """
import os, subprocess, sys
import autotrace
autotrace.install(langfuse_host=sys.argv[1], public_key="pk-lf-1", secret_key="sk-lf-1", export_interval=30,
                  integrations=(), local_store="off", unknown_tenant="default")
with autotrace.start_span("exported-at-exit"):
    pass
# a SIGTERM that arrives while the exit export waits on a slow endpoint, as a pool's terminate() does
subprocess.Popen(["sh", "-c", f"sleep 0.3; kill -TERM {os.getpid()}"])
"""


def test_a_sigterm_during_the_exit_export_waits_for_it_then_ends_the_process() -> None:
    from autotrace.testing.otlp_receiver import OtlpReceiver

    with OtlpReceiver() as receiver:
        receiver.delay(0.8)
        done = subprocess.run([sys.executable, "-c", SIGTERM_AT_EXIT, receiver.url], capture_output=True,
                              text=True, timeout=30)
        assert [span.name for span in receiver.spans] == ["exported-at-exit"], done.stderr
    assert done.returncode == -signal.SIGTERM, done.stderr  # still ended by the signal, as the sender expects


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_the_workers_of_another_program_the_application_starts_stay_untraced(
        tmp_path: Path, fake: FakeOpenAI, method: str) -> None:
    """Only the traced process's own spawned workers are its own: another program it starts (not
    traced without ``AUTOTRACE_TRACE_SUBPROCESSES``) keeps its ``multiprocessing`` workers untraced."""
    (tmp_path / "mp.py").write_text(MULTIPROCESSING_SCRIPT)
    (tmp_path / "launcher.py").write_text("import subprocess, sys\n"
                                          f"subprocess.run([sys.executable, 'mp.py', '{method}'], check=True)\n")
    done = subprocess.run([str(BIN / "autotrace"), "run", "--", sys.executable, "launcher.py"],
                          env=_env(tmp_path, fake), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "0 [False, False]\n"), done.stderr
    store = tmp_path / "traces.db"
    assert not store.exists() or LocalStore(store, read_only=True).observations() == []
