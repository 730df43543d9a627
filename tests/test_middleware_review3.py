"""WSGI file bodies (``wsgi.file_wrapper``) behind the tenant middleware, under real servers: the
server must still get the very object to send (sendfile), and a ``close`` the application gave it
(Django hands the wrapper its response's, which sends ``request_finished``) runs in the request's
tenant and trace, as a streamed body's does."""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from autotrace.export.local_store import LocalStore
from autotrace.middleware import TenantWSGIMiddleware
from tests.helpers import Traced, isolated_env, served_in_thread
from tests.test_web_frameworks import PARENT, TRACE

BIN = Path(sys.executable).parent

#: A Django-like application: the file goes to the server's file wrapper, whose ``close`` is the
#: response's (Django: ``file_to_stream.close = response.close``), here a span of its own. Served in
#: another process, it installs autotrace (in the worker: no preloading) and flushes at the close.
FILE_APP = """
import io, os
import autotrace
from autotrace.middleware import TenantWSGIMiddleware

if os.environ.get("STORE"):
    autotrace.install(local_store="on", local_store_path=os.environ["STORE"], integrations=())

class File(io.BufferedReader):
    lines = 0  # reads by line: how a server iterates a body it cannot send as a file

    def __next__(self):
        File.lines += 1
        return super().__next__()

class Response:
    def __init__(self, path):
        self.file = File(io.FileIO(path, "rb"))
        self.closers = [self.file.close]  # the file's own, before it is given the response's

    def close(self):
        with autotrace.start_span("request-finished") as span:
            span.set_output({"tenant": autotrace.current_tenant(), "lines": File.lines})
        for close in self.closers:
            close()
        if os.environ.get("STORE"):
            autotrace.flush(10)

def app(environ, start_response):
    response = Response(os.environ["BODY_FILE"])
    start_response("200 OK", [("Content-Length", str(os.path.getsize(os.environ["BODY_FILE"])))])
    response.file.close = response.close
    return environ["wsgi.file_wrapper"](response.file, 65536)

application = TenantWSGIMiddleware(app, lambda environ: environ.get("HTTP_X_TENANT"))
"""


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def wsgiref_server(app: Any) -> Iterator[str]:
    """``app`` served by the standard library's WSGI server (its ``FileWrapper``) in a thread."""
    with served_in_thread(make_server("127.0.0.1", 0, app, handler_class=_Quiet)) as url:
        yield url


def _get(url: str, tenant: str | None = "acme") -> bytes:
    sent = {"traceparent": PARENT, **({"x-tenant": tenant} if tenant else {})}
    with urllib.request.urlopen(urllib.request.Request(url, headers=sent), timeout=10) as response:
        return bytes(response.read())


def test_a_file_wrapper_s_close_runs_in_the_request_s_tenant_and_trace_under_wsgiref(
        traced: Traced, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = tmp_path / "report.bin"
    body.write_bytes(b"\x00report\n" * 1000)
    monkeypatch.setenv("BODY_FILE", str(body))
    namespace: dict[str, Any] = {}
    exec(compile(FILE_APP, "file_app", "exec"), namespace)  # the application the servers below run
    with wsgiref_server(namespace["application"]) as url:
        assert _get(url) == body.read_bytes()
        assert _get(url, tenant=None) == body.read_bytes()  # the next request, on the same server thread
    records = traced.records()
    assert [(r["name"], r["tenant"], r["output"], r["trace_id"], r["parent_id"]) for r in records] == [
        ("request-finished", "acme", {"tenant": "acme", "lines": 0}, TRACE, "b7ad6b7169203331"),
        ("request-finished", None, {"tenant": None, "lines": 0}, TRACE, "b7ad6b7169203331"),
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _served_by(command: list[str], tmp_path: Path, port: int, env: dict[str, str]) -> bytes:
    """Start ``command`` serving ``FILE_APP``, send one request for tenant acme, stop the server;
    what it answered."""
    (tmp_path / "app.py").write_text(textwrap.dedent(FILE_APP))
    server = subprocess.Popen(command, env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = _get(f"http://127.0.0.1:{port}/")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.communicate()[0]
                time.sleep(0.05)
        store = tmp_path / "traces.db"  # the close (and its flush) may come after the client has the body
        while not (store.exists() and _finished(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.05)
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    return answer


def _env(tmp_path: Path, body: Path) -> dict[str, str]:
    env = isolated_env(tmp_path)
    env.update({"STORE": str(tmp_path / "traces.db"), "BODY_FILE": str(body), "PYTHONPATH": str(tmp_path),
                "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}"})
    return env


def _finished(tmp_path: Path) -> list[tuple[Any, ...]]:
    records = LocalStore(tmp_path / "traces.db", read_only=True).observations()
    return [(r["name"], r["tenant"], r["output"], r["trace_id"], r["parent_id"]) for r in records]


def test_a_file_sent_by_gunicorn_is_closed_in_the_request_s_tenant_and_trace(tmp_path: Path) -> None:
    body = tmp_path / "report.bin"
    body.write_bytes(os.urandom(200_000))
    port = _free_port()
    answer = _served_by([str(BIN / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}", "--no-control-socket", "app:application"],
                        tmp_path, port, _env(tmp_path, body))
    assert answer == body.read_bytes()
    assert _finished(tmp_path) == [("request-finished", "acme", {"tenant": "acme", "lines": 0}, TRACE,
                                      "b7ad6b7169203331")]


def _uwsgi() -> str | None:
    """A uWSGI binary (not among the test dependencies: it builds from source), if one is found."""
    return shutil.which("uwsgi", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


def uwsgi_file_wrapper(filelike: Any, block_size: int = 8192) -> Any:
    """What uWSGI's ``wsgi.file_wrapper`` (a function, ``uwsgi_sendfile``) returns: the file itself,
    which uWSGI sends with sendfile only if the application returns that very object."""
    return filelike


def test_under_uwsgi_s_function_file_wrapper_the_file_itself_is_returned(traced: Traced) -> None:
    """Wrapped in anything else, uWSGI iterated the file by lines (a binary file's "line" as large
    as the file, held in memory) instead of sending it."""
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [])
        seen.append(io.BytesIO(b"\x00" * 100_000 + b"\n"))
        return environ["wsgi.file_wrapper"](seen[0], 65536)

    body = TenantWSGIMiddleware(app, lambda environ: "acme")({"wsgi.file_wrapper": uwsgi_file_wrapper}, lambda *a: None)
    assert body is seen[0]  # uWSGI sends it with sendfile
    body.close()
    assert body.closed


@pytest.mark.skipif(_uwsgi() is None, reason="uWSGI is not installed (pip install uwsgi builds it from source)")
def test_a_file_sent_by_uwsgi_is_sent_whole_and_closed_in_the_request_s_tenant(tmp_path: Path) -> None:
    body = tmp_path / "report.bin"
    body.write_bytes(b"a" * 300_000 + b"\n" + b"b" * 10)
    port = _free_port()
    answer = _served_by([str(_uwsgi()), "--die-on-term", "--http-socket", f"127.0.0.1:{port}", "--master",
                         "--processes", "1", "--lazy-apps", "--disable-logging", "-H", sys.prefix, "--pythonpath", str(tmp_path),
                         "--module", "app:application"], tmp_path, port, _env(tmp_path, body))
    assert answer == body.read_bytes()
    assert _finished(tmp_path) == [("request-finished", "acme", {"tenant": "acme", "lines": 0}, TRACE,
                                      "b7ad6b7169203331")]
