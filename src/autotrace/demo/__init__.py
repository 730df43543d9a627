"""The two-service demo: an agent service and a RAG service, both started with ``autotrace run``,
talking over gRPC on loopback, for two tenants, against a loopback OpenAI-compatible server.

The two services write to the same embedded store; the demo then prints each tenant's stitched
tree (one trace across both processes) and shows the tenants' traces are separate.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from .. import render
from .._config_parse import as_path
from ..config import default_store_path
from ..export.local_store import LocalStore
from ..testing.fake_openai import FakeOpenAI
from .brain import respond

_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "grpc_proxy"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _launcher() -> list[str]:
    return [sys.executable, "-m", "autotrace", "run", "--", sys.executable, "-m"]


def _path_note() -> str | None:
    """What to do first when the shell would not run this environment's ``autotrace`` (a virtualenv
    not activated, as after ``make demo``): the commands the demo suggests would fail or use another."""
    script = Path(sys.executable).parent / "autotrace"
    found = shutil.which("autotrace")
    if not script.is_file() or (found is not None and Path(found).resolve() == script.resolve()):
        return None
    return (f"(autotrace here is {script}: run `source {shlex.quote(str(script.parent / 'activate'))}` "
            f"first, or type that path)")


def _store_path(db: str | Path | None) -> Path:
    """The store the demo writes: the one its suggested commands read, ``--db`` as they take it (``~``
    expanded), else the CLI's default (``AUTOTRACE_LOCAL_STORE_PATH``, else ``default_store_path``)."""
    given = db if db is not None else (os.environ.get("AUTOTRACE_LOCAL_STORE_PATH") or "").strip()
    return as_path(given) if given else default_store_path()


def run_demo(db: str | Path | None = None, quiet: bool = False) -> int:
    """Run both services for two tenants and print each tenant's stitched trace tree."""
    store_path = _store_path(db)
    # offline and as installed: none of the shell's settings (AUTOTRACE_LANGFUSE_HOST and a tenant's keys
    # sent the demo's made-up traces to a real Langfuse project; AUTOTRACE_ENABLED=false left the trees
    # empty), and no proxy between the services and the loopback servers (the OpenAI SDK and gRPC
    # would send even 127.0.0.1 to a proxy the machine's environment names)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LANGFUSE_", "OTEL_", "AUTOTRACE_")) and k.lower() not in _PROXY_VARIABLES}
    env.update({"AUTOTRACE_LOCAL_STORE": "on", "AUTOTRACE_LOCAL_STORE_PATH": str(store_path),
                "AUTOTRACE_TRUST_INCOMING_TENANT": "true", "AUTOTRACE_EXPORT_INTERVAL": "0.1"})
    port = _free_port()
    with FakeOpenAI(responder=respond) as llm, subprocess.Popen(  # closes its pipe on the way out
            [*_launcher(), "autotrace.demo.rag_service", "--port", str(port), "--openai", llm.base_url],
            env={**env, "AUTOTRACE_SERVICE_NAME": "rag-service"}, stdout=subprocess.PIPE, text=True) as rag:
        try:
            assert rag.stdout is not None
            if rag.stdout.readline().strip() != "ready":
                print("autotrace demo: the RAG service did not start", file=sys.stderr)
                return 1
            agent = subprocess.run([*_launcher(), "autotrace.demo.agent_service", "--rag", f"127.0.0.1:{port}",
                                    "--openai", llm.base_url], env={**env, "AUTOTRACE_SERVICE_NAME": "agent-service"},
                                   capture_output=True, text=True, timeout=120, check=False)
        finally:
            rag.terminate()
            try:
                rag.wait(timeout=30)
            except subprocess.TimeoutExpired:
                rag.kill()
    if agent.returncode != 0:
        print(agent.stderr, file=sys.stderr)
        return agent.returncode
    turns = [json.loads(line) for line in agent.stdout.splitlines() if line.startswith("{")]
    store = LocalStore(store_path)
    for turn in turns:
        records = store.trace(turn["trace_id"])
        services = sorted({r.get("service") or "?" for r in records})
        tenants = sorted({r.get("tenant") or "-" for r in records})
        if not quiet:
            print(f"\n=== tenant {turn['tenant']}: one trace across {', '.join(services)}; "
                  f"tenants in it: {', '.join(tenants)}")
            print(render.render_tree(records))
            print(f"answer: {turn['answer']}")
    if not quiet:
        cli = "autotrace" if db is None else f"autotrace --db {shlex.quote(str(store_path))}"
        note = _path_note()
        if note:
            print(f"\n{note}", end="")
        print(f"\nstored in {store_path}. Try: {cli} traces   |   {cli} show <trace id>   |   "
              f"{cli} query 'type=generation and usage.total>150'")
    return 0
