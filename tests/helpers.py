"""Test helpers: read finished observations back from the local store as exact trees."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import autotrace
from autotrace import render

#: Test-only TLS material (tests/certs/README.md).
CERTS = Path(__file__).parent / "certs"


def isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """This process's environment for a child interpreter, without autotrace's, Langfuse's,
    OpenTelemetry's and proxy variables, with a home of its own under ``tmp_path``, and ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AUTOTRACE_", "LANGFUSE_", "OTEL_")) and not k.lower().endswith("_proxy")}
    return {**env, "AUTOTRACE_HOME": str(tmp_path / "home"), **extra}


def autotrace_cli(env: dict[str, str], cwd: Path | None, *argv: str,
                  timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m autotrace *argv`` in a child interpreter with ``env``, in ``cwd``: its exit code
    and output."""
    return subprocess.run([sys.executable, "-m", "autotrace", *argv], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=cwd)


def basic_auth(public: str, secret: str) -> str:
    """The ``Authorization`` header a Langfuse key pair makes (HTTP Basic)."""
    return "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()


def wait_for_stat(name: str, at_least: int = 1, timeout: float = 10.0) -> int:
    """The counter ``name`` once it reaches ``at_least`` (or ``timeout`` has passed): its value."""
    deadline = time.monotonic() + timeout
    while autotrace.stats().get(name, 0) < at_least and time.monotonic() < deadline:
        time.sleep(0.01)
    return autotrace.stats().get(name, 0)


def server_tls(cert: str = "server", client_ca: Path | None = None) -> ssl.SSLContext:
    """The server side of TLS with a test certificate of ``CERTS``: ``server`` (IP 127.0.0.1,
    signed by ``ca.pem``) or ``server-ipv6`` (``::1``, self-signed); with ``client_ca``, a client
    certificate from that CA is required (mutual TLS)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(CERTS / f"{cert}.pem", CERTS / f"{cert}-key.pem")
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(client_ca)
    return context


class Traced:
    """An installed autotrace whose spans land in a temporary local store."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def records(self) -> list[dict[str, Any]]:
        assert autotrace.flush(10.0), "flush timed out"
        store = autotrace.local_store()
        assert store is not None
        return sorted(store.observations(), key=lambda r: (r["start_ns"], r["name"]))

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        assert autotrace.flush(10.0)
        store = autotrace.local_store()
        assert store is not None
        return store.trace(trace_id)

    def one(self) -> dict[str, Any]:
        """The one observation recorded (an assertion names them all if there are others)."""
        records = self.records()
        assert len(records) == 1, [r["name"] for r in records]
        return records[0]


@contextmanager
def served_in_thread(server: Any) -> Iterator[str]:
    """A ``socketserver``-style HTTP server (wsgiref's, werkzeug's) serving on a thread: its base URL
    until the block ends, then shut down and closed."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def iso_ns(iso: str) -> int:
    """An ISO 8601 time (as Langfuse's ``completion_start_time``) in nanoseconds since the epoch."""
    return int(dt.datetime.fromisoformat(iso).timestamp() * 1e9)


def shape(records: list[dict[str, Any]]) -> list[Any]:
    """The tree as nested ``(type, name, [children])`` tuples, children in start order."""

    def convert(node: tuple[dict[str, Any], list[Any]]) -> tuple[str, str, list[Any]]:
        record, children = node
        return (record["type"], record["name"], [convert(child) for child in children])

    return [convert(root) for root in render.build_tree(sorted(records, key=lambda r: r["start_ns"]))]


def unordered(tree: list[Any]) -> list[Any]:
    """A ``shape`` tree with each node's children sorted, for steps that run concurrently (their
    start order is the scheduler's)."""
    return sorted((kind, name, unordered(children)) for kind, name, children in tree)


def install_one_tenant(rx: Any, **options: Any) -> None:
    """autotrace installed with one tenant, ``t``, exporting to the receiver ``rx``."""
    from autotrace.export.credentials import Credentials

    options.setdefault("integrations", ())
    autotrace.install(langfuse_host="http://127.0.0.1:9", export_interval=0.05,
                      credentials={"t": Credentials("pk-t", "sk-t", host=rx.endpoint)}, **options)


def install_default_tenant(rx: Any, name: str, **options: Any) -> None:
    """autotrace installed exporting to the receiver ``rx`` under the default key pair
    (``pk-lf-<name>``/``sk-lf-<name>``) for spans without a tenant; a long interval: a test's
    spans go out together, at ``flush``."""
    options.setdefault("integrations", ())
    autotrace.install(langfuse_host=rx.endpoint, public_key=f"pk-lf-{name}", secret_key=f"sk-lf-{name}",
                      unknown_tenant="default", export_interval=30.0, **options)


def numbered_spans(n: int, prefix: str = "step") -> None:
    """``n`` spans named ``<prefix>-<i>``, each with the output ``output <i>``."""
    for i in range(n):
        with autotrace.start_span(f"{prefix}-{i}") as span:
            span.set_output(f"output {i}")


def exported_chat(rx: Any, fake: Any, content: str, redacted: str) -> bytes:
    """One chat call saying ``content`` for tenant ``t`` through the fake OpenAI server, exported to
    ``rx``: its span must record ``redacted`` as the input and the echoed reply; returns every
    request body the receiver got, for the test's own checks."""
    import json

    import openai

    install_one_tenant(rx, integrations=("openai",))
    client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    with autotrace.tenant("t"):
        reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": content}])
    assert reply.choices[0].message.content == f"echo: {content}"
    assert autotrace.flush(5)
    (span,) = rx.wait_for_spans(1)
    assert json.loads(span.attributes["langfuse.observation.input"]) == [{"role": "user", "content": redacted}]
    assert json.loads(span.attributes["langfuse.observation.output"]) == {"content": f"echo: {redacted}",
                                                                           "role": "assistant"}
    return b"".join(r.body for r in rx.requests)


def ended_span(name: str = "s", tenant: str | None = None) -> None:
    """One finished span named ``name``, in ``tenant``'s scope when given."""
    import autotrace

    if tenant is None:
        with autotrace.start_span(name):
            pass
    else:
        with autotrace.tenant(tenant), autotrace.start_span(name):
            pass


def timed_send(target: Any, body: bytes = b"spans") -> tuple[Any, float]:
    """One ``target.send(body)`` (an ``HttpTarget``), the target closed after: its result and the
    seconds it took (for checks that a fault cannot hold an export past its timeout)."""
    started = time.monotonic()
    try:
        return target.send(body, {}), time.monotonic() - started
    finally:
        target.close()


def sse_data(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``payload`` as JSON, as the OpenAI API streams a chunk."""
    return b"data: " + json.dumps(payload).encode() + b"\n\n"
