"""Install lifecycle, configuration and middleware: fork while another thread installs,
spans open at uninstall, the service name of ``OTEL_RESOURCE_ATTRIBUTES``, and more."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace

import autotrace
from autotrace import propagation
from autotrace.config import ConfigError, load_settings
from autotrace.export.local_store import LocalStore
from autotrace.middleware import TenantASGIMiddleware
from autotrace.runtime import state
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import Traced, isolated_env


def _wait_for_child(pid: int, timeout: float) -> int | None:
    """The child's exit code, or None (after killing it) if it has not ended within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_while_another_thread_uninstalls_gives_a_child_that_can_install(tmp_path: Path) -> None:
    """The uninstall holds autotrace's lock while its endpoint is slow; a worker forked meanwhile
    (gunicorn-style) used to inherit the lock held, and hang for good on its own install()."""
    with OtlpReceiver() as rx:
        rx.delay(1.0)
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk", secret_key="sk", unknown_tenant="default",
                          integrations=(), export_interval=0.05)
        with autotrace.start_span("before"):
            pass
        time.sleep(0.2)  # the export is under way on the slow endpoint
        stopping = threading.Thread(target=autotrace.uninstall, args=(0.8,))
        stopping.start()
        time.sleep(0.2)  # the uninstall is waiting for the endpoint, holding the lock
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                autotrace.install(local_store="on", local_store_path=tmp_path / "child.db", integrations=(),
                                  export_interval=0.05)
                with autotrace.start_span("in-child"):
                    pass
                code = 0 if autotrace.flush(5) else 2
            finally:
                os._exit(code)
        stopping.join()
        assert _wait_for_child(pid, 15) == 0
    records = LocalStore(tmp_path / "child.db").observations()
    assert [r["name"] for r in records] == ["in-child"]


def test_a_span_open_at_uninstall_is_counted_as_dropped(tmp_path: Path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05)
    started, finish = threading.Event(), threading.Event()

    def request() -> None:
        with autotrace.tenant("acme"), autotrace.start_span("in-flight"):
            started.set()
            finish.wait(5)

    worker = threading.Thread(target=request)
    worker.start()
    started.wait(5)
    autotrace.uninstall(1.0)
    finish.set()
    worker.join()
    with trace.get_tracer("app").start_as_current_span("after-uninstall"):  # never traced: not a drop
        pass
    assert autotrace.stats() == {"spans_dropped.shutdown": 1}


_SERVICE_APP = """
import json, sys, autotrace
autotrace.install(local_store="on", integrations=(), **json.loads(sys.argv[1]))
with autotrace.start_span("s"):
    pass
autotrace.flush(5)
print(json.dumps([r["service"] for r in autotrace.local_store().observations()]))
"""


@pytest.mark.parametrize(
    ("env", "options", "expected"),
    [
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=checkout,team=ai"}, {}, "checkout"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=checkout", "OTEL_SERVICE_NAME": "otel-svc"}, {}, "otel-svc"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=checkout", "AUTOTRACE_SERVICE_NAME": "mine"}, {}, "mine"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=checkout"}, {"service_name": "kw"}, "kw"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "team=ai"}, {}, "autotrace-app"),
        ({}, {}, "autotrace-app"),
    ],
)
def test_the_service_name_of_otel_resource_attributes_is_kept(
        tmp_path: Path, env: dict[str, str], options: dict[str, str], expected: str) -> None:
    """A provider autotrace creates keeps ``service.name`` from ``OTEL_RESOURCE_ATTRIBUTES`` unless a
    service name is configured (it used to be replaced by autotrace-app)."""
    result = subprocess.run([sys.executable, "-c", _SERVICE_APP, json.dumps(options)], capture_output=True,
                            text=True, env={**_clean_env(tmp_path), **env}, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [expected]


def _clean_env(tmp_path: Path) -> dict[str, str]:
    return isolated_env(tmp_path, AUTOTRACE_EXPORT_INTERVAL="0.05")


def test_a_tilde_in_a_path_setting_is_the_home_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A path from a ``.env`` file or a container's environment is not expanded by a shell: the store
    used to go to a directory named ``~`` under the working directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOTRACE_LOCAL_STORE_PATH", "~/stores/traces.db")
    monkeypatch.setenv("AUTOTRACE_CREDENTIALS_FILE", "~/tenants.toml")
    settings = load_settings()
    assert settings.local_store_path == tmp_path / "home" / "stores" / "traces.db"
    assert settings.credentials == tmp_path / "home" / "tenants.toml"
    assert load_settings({"local_store_path": "~/kw.db"}).local_store_path == tmp_path / "home" / "kw.db"
    assert load_settings({"local_store_path": Path("~/kw.db")}).local_store_path == tmp_path / "home" / "kw.db"
    monkeypatch.delenv("AUTOTRACE_LOCAL_STORE_PATH")
    monkeypatch.setenv("AUTOTRACE_HOME", "~/at")
    assert load_settings().local_store_path == tmp_path / "home" / "at" / "traces.db"
    autotrace.install(integrations=(), export_interval=0.05)
    with autotrace.start_span("s"):
        pass
    assert autotrace.flush(5)
    assert [r["name"] for r in LocalStore(tmp_path / "home" / "at" / "traces.db").observations()] == ["s"]
    assert not (tmp_path / "~").exists()


def test_keyword_strings_are_stripped_and_a_blank_one_is_no_value_as_in_the_environment() -> None:
    """``secret_key=Path(secret_file).read_text()`` ends with a newline, which went into the Basic auth
    of every export; a blank keyword (from a config file) was an error or an empty setting."""
    settings = load_settings({"langfuse_host": " https://lf.example.com\n", "public_key": "pk-lf-1\n",
                              "secret_key": "sk-lf-1\n", "unknown_tenant": " local ", "service_name": "",
                              "credentials": " ", "redact": ["email", " phone", ""],
                              "integrations": ["openai", " grpc ", ""], "disabled_integrations": [" "]}, env={})
    assert (settings.langfuse_host, settings.public_key, settings.secret_key) == (
        "https://lf.example.com", "pk-lf-1", "sk-lf-1")
    assert (settings.unknown_tenant, settings.service_name, settings.credentials) == ("local", "autotrace-app", None)
    assert settings.redact == ("EMAIL", "PHONE")
    assert (settings.integrations, settings.disabled_integrations) == (("openai", "grpc"), ())
    assert load_settings({"langfuse_host": "", "integrations": "", "redact": " "}, env={}) == load_settings(env={})
    with pytest.raises(ConfigError, match="must be set together"):  # a blank key is no key, as in the environment
        load_settings({"public_key": "pk-lf-1", "secret_key": " "}, env={})
    assert load_settings({"set_global_provider": "false"}, env={}).set_global_provider is False


def test_a_keyword_secret_with_a_newline_authenticates_like_the_variable() -> None:
    with OtlpReceiver() as rx:
        rx.require_auth("Basic " + base64.b64encode(b"pk-lf-1:sk-lf-1").decode())
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-1\n", secret_key="sk-lf-1\n",
                          unknown_tenant="default", integrations=(), export_interval=0.05, max_retries=0)
        with autotrace.start_span("s"):
            pass
        assert autotrace.flush(5)
        assert [s.name for s in rx.spans] == ["s"]
    assert autotrace.stats()["spans_exported.langfuse:default"] == 1


PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _asgi_request(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str, dict[str, str]]:
    """The tenant, trace id and outgoing headers an app sees behind the middleware."""
    seen: list[tuple[str | None, str, dict[str, str]]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        with autotrace.start_span("handler") as span:
            seen.append((autotrace.current_tenant(), span.trace_id, propagation.inject({})))

    async def noop(*args: Any) -> None:
        return None

    asyncio.run(TenantASGIMiddleware(app)({"type": "http", "headers": headers}, noop, noop))
    return seen[0]


def test_repeated_asgi_headers_are_combined_as_w3c_says(tmp_path: Path) -> None:
    """A baggage or tracestate header sent twice (as proxies do) used to keep only the last one: a
    trusted caller's tenant in the first was lost, and so were the first's entries."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(),
                      trust_incoming_tenant=True, export_interval=0.05)
    tenant, trace_id, outgoing = _asgi_request([
        (b"traceparent", PARENT.encode()), (b"tracestate", b"a=1"), (b"Baggage", b"autotrace.tenant=globex"),
        (b"tracestate", b"b=2"), (b"baggage", b"other=1")])
    assert (tenant, trace_id) == ("globex", "0af7651916cd43dd8448eb211c80319c")
    assert outgoing["tracestate"] == "a=1,b=2"
    assert sorted(outgoing["baggage"].split(",")) == ["autotrace.tenant=globex", "other=1"]
    other = "00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    tenant, trace_id, _ = _asgi_request([(b"traceparent", PARENT.encode()), (b"traceparent", other.encode())])
    assert trace_id not in ("0af7651916cd43dd8448eb211c80319c", "1af7651916cd43dd8448eb211c80319c")  # ambiguous


@pytest.mark.parametrize(
    ("returned", "type_name"), [(42, "int"), ("", "str"), ("acme\n", "str"), (b"acme", "bytes")])
def test_a_tenant_function_returning_no_tenant_id_is_said_once(
        traced: Traced, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder, returned: Any,
        type_name: str) -> None:
    """It used to be only counted: every request of the app lost its tenant (its spans dropped) silently.
    (An ``async`` tenant function is awaited: tests/test_web_frameworks.py.)"""
    def tenant_of(scope: Any) -> Any:
        return returned

    seen: list[str | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(autotrace.current_tenant())

    async def noop(*args: Any) -> None:
        return None

    with caplog.at_level("WARNING", logger="autotrace"):
        for _ in range(3):
            asyncio.run(TenantASGIMiddleware(app, tenant_of)({"type": "http", "headers": []}, noop, noop))
    assert seen == [None, None, None]
    assert autotrace.stats()["tenant_resolver_errors"] == 3
    assert [r.getMessage() for r in caplog.records if r.name == "autotrace"] == [
        f"autotrace: tenant function returned a {type_name} that is no tenant id (1-128 characters of "
        "[A-Za-z0-9._:@/-]); request has no tenant"]
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


@pytest.mark.parametrize(("public", "secret", "which"), [("pk lf", "sk-lf-1", "public_key"), ("pk-lf-1", "sk\x00", "secret_key")])
def test_an_invalid_default_key_pair_is_a_config_error_that_keeps_the_running_install(
        tmp_path: Path, public: str, secret: str, which: str) -> None:
    """It raised CredentialsError from inside install(), after the running install had been stopped."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05)
    running, threads = state.settings, set(threading.enumerate())
    with pytest.raises(ConfigError) as raised:
        autotrace.install(langfuse_host="http://127.0.0.1:9", public_key=public, secret_key=secret,
                          unknown_tenant="default", integrations=())
    assert str(raised.value) == (f"setting 'public_key': the default project's key pair is invalid: {which} must "
                                 "not contain whitespace or control characters")
    assert state.settings is running and set(threading.enumerate()) == threads
    with autotrace.start_span("still-traced"):
        pass
    assert autotrace.flush(5)
    assert [r["name"] for r in autotrace.local_store().observations()] == ["still-traced"]


def test_run_keeps_the_programs_exit_status_path_and_sitecustomize(tmp_path: Path) -> None:
    """``autotrace run`` replaces itself with the program: its exit code or signal is the program's; a
    script path with spaces and ``-m`` work; PYTHONPATH is kept after the bootstrap; the user's
    sitecustomize runs once in the program; spans ended before ``sys.exit`` reach the store."""
    folder = tmp_path / "my app"
    (folder / "pkg").mkdir(parents=True)
    user_site = tmp_path / "usersite"
    user_site.mkdir()
    (user_site / "sitecustomize.py").write_text(
        "import os, pathlib\nwith open(pathlib.Path(os.environ['RUNS_LOG']), 'a') as f: f.write(f'{os.getpid()}\\n')\n")
    app = ("import os, sys, autotrace\nwith autotrace.start_span('exiting'):\n    pass\n"
           "print(os.getpid(), sys.path.index(os.environ['USER_SITE']) - sys.path.index(os.environ['BOOT']))\n"
           "sys.exit(int(sys.argv[1]))\n")
    (folder / "app.py").write_text(app)
    (folder / "pkg" / "__init__.py").write_text("")
    (folder / "pkg" / "__main__.py").write_text(app)
    (folder / "killed.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    env = {**_clean_env(tmp_path), "PYTHONPATH": str(user_site), "RUNS_LOG": str(tmp_path / "runs.log"),
           "USER_SITE": str(user_site), "BOOT": str(Path(autotrace.__file__).parent / "bootstrap")}
    cli = str(Path(sys.executable).with_name("autotrace"))
    pids = []
    for program, code in (([str(folder / "app.py"), "7"], 7), (["-m", "pkg", "3"], 3)):
        result = subprocess.run([cli, "run", "--", sys.executable, *program], capture_output=True, text=True,
                                env=env, cwd=folder, timeout=120, check=False)
        assert result.returncode == code, result.stderr
        pid, order = result.stdout.split()
        assert order == "1"  # the bootstrap first, then the user's PYTHONPATH
        pids.append(pid)
    killed = subprocess.run([cli, "run", "--", sys.executable, str(folder / "killed.py")], env=env, timeout=120,
                            check=False)
    assert killed.returncode == -15
    launched = (tmp_path / "runs.log").read_text().split()
    assert [launched.count(pid) for pid in pids] == [2, 2]  # once in the launcher, once in the program (same pid)
    records = LocalStore(tmp_path / "home" / "traces.db").observations()
    assert [r["name"] for r in records] == ["exiting", "exiting"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_relative_store_path_is_the_same_file_after_the_app_changes_directory(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A worker forked after a chdir (a daemonising app) reopened a relative path from the new directory:
    its spans went to another store."""
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AUTOTRACE_LOCAL_STORE_PATH", "traces.db")
    autotrace.install(local_store="on", integrations=(), export_interval=0.05)
    os.chdir(tmp_path / "elsewhere")
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            with autotrace.start_span("in-worker"):
                pass
            code = 0 if autotrace.flush(5) else 2
        finally:
            os._exit(code)
    assert _wait_for_child(pid, 30) == 0
    assert [r["name"] for r in LocalStore(tmp_path / "traces.db").observations()] == ["in-worker"]
    assert not (tmp_path / "elsewhere" / "traces.db").exists()


def test_a_span_open_across_a_reinstall_keeps_its_tenant(rx: OtlpReceiver) -> None:
    """``install(**new options)`` while a tenant's span is open: the span ends under the new install
    and still goes to its tenant's project, never to the default project of unknown tenants."""
    from autotrace.export.credentials import Credentials

    with OtlpReceiver() as default:
        def install(interval: float) -> None:
            autotrace.install(langfuse_host=default.endpoint, public_key="pk-default", secret_key="sk-default",
                              unknown_tenant="default", integrations=(), export_interval=interval,
                              credentials={"acme": Credentials("pk-acme", "sk-acme", host=rx.endpoint)})

        install(0.05)
        started, finish = threading.Event(), threading.Event()

        def work() -> None:
            with autotrace.tenant("acme"), autotrace.start_span("open-across"):
                started.set()
                finish.wait(5)

        worker = threading.Thread(target=work)
        worker.start()
        assert started.wait(5)
        install(0.06)  # new options: a new pipeline
        finish.set()
        worker.join()
        assert autotrace.flush(10)
        (span,) = rx.wait_for_spans(1)
        assert (span.name, span.attributes["autotrace.tenant"]) == ("open-across", "acme")
        assert default.spans == []
