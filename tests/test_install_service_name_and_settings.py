"""Install and configuration: an explicit service name always wins, a mistyped
setting is a ``ConfigError`` naming it, a re-install keeps tracing other threads' spans and renames
the service of the provider autotrace made."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace.config import ConfigError, load_settings
from autotrace.export import router as router_module
from autotrace.export.credentials import Credentials
from autotrace.export.local_store import LocalStore
from autotrace.runtime import state
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import isolated_env

_SERVICE_APP = """
import json, sys, autotrace
for options in json.loads(sys.argv[1]):
    autotrace.install(local_store="on", integrations=(), **options)
with autotrace.start_span("s"):
    pass
autotrace.flush(5)
print(json.dumps([r["service"] for r in autotrace.local_store().observations()]))
"""


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return isolated_env(tmp_path, AUTOTRACE_EXPORT_INTERVAL="0.05", **extra)


def _services(tmp_path: Path, installs: list[dict[str, Any]], env: dict[str, str],
              launcher: tuple[str, ...] = ()) -> list[str]:
    result = subprocess.run([*launcher, sys.executable, "-c", _SERVICE_APP, json.dumps(installs)],
                            capture_output=True, text=True, env=_clean_env(tmp_path, **env), timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("env", "options"),
    [
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=checkout"}, {"service_name": "autotrace-app"}),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=checkout", "AUTOTRACE_SERVICE_NAME": "autotrace-app"}, {}),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=checkout", "OTEL_SERVICE_NAME": "autotrace-app"}, {}),
    ],
)
def test_an_explicit_service_name_equal_to_the_default_beats_otel_resource_attributes(
        tmp_path: Path, env: dict[str, str], options: dict[str, str]) -> None:
    """The default was indistinguishable from an explicit ``autotrace-app``, which lost to the variable."""
    assert _services(tmp_path, [options], env) == ["autotrace-app"]


def test_the_settings_name_the_service_the_resource_gets() -> None:
    """``install()`` returns the service name its spans carry, read as OpenTelemetry reads the variable."""
    env = {"OTEL_RESOURCE_ATTRIBUTES": "team=ai, service.name = check%20out ,x=1"}
    assert load_settings(env=env).service_name == "check out"
    assert load_settings({"service_name": " "}, env=env).service_name == "check out"  # blank: no value
    assert load_settings(env={"OTEL_RESOURCE_ATTRIBUTES": "service.name="}).service_name == "autotrace-app"
    assert load_settings({"service_name": "autotrace-app"}, env=env).service_name == "autotrace-app"


def test_a_reinstall_renames_the_service_of_the_provider_autotrace_made(tmp_path: Path) -> None:
    """``autotrace run`` installs first; the application's own ``install(service_name=...)`` was
    accepted and returned, but its spans kept ``autotrace-app``."""
    installs = [{}, {"service_name": "mine"}]
    assert _services(tmp_path, installs, {}) == ["mine"]
    zero_code = (sys.executable, "-m", "autotrace", "run", "--")
    assert _services(tmp_path, [{"service_name": "mine"}], {"AUTOTRACE_HOME": str(tmp_path / "zero-code")},
                     zero_code) == ["mine"]


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        ({"environment": 3}, "environment"),
        ({"environment": b"prod"}, "environment"),
        ({"release": 1.5}, "release"),
        ({"service_name": ["svc"]}, "service_name"),
        ({"local_store_path": 5}, "local_store_path"),
        ({"local_store_path": b"/tmp/x.db"}, "local_store_path"),
        ({"integrations": 3}, "integrations"),
        ({"disabled_integrations": True}, "disabled_integrations"),
        ({"integrations": {"openai": 1}}, "integrations"),
        ({"langfuse_host": "http://127.0.0.1:9", "credentials": 1.5}, "credentials"),
        ({"langfuse_host": "http://127.0.0.1:9", "credentials": {"acme": 3}}, "credentials"),
        ({"langfuse_host": "http://127.0.0.1:9", "credentials": {"acme": {"public_key": 1}}}, "credentials"),
    ],
)
def test_a_mistyped_setting_is_a_config_error_naming_it_and_the_install_stays(
        options: dict[str, Any], setting: str) -> None:
    """These raised TypeError / CredentialsError from deep inside install() (or were accepted)."""
    autotrace.install(integrations=(), export_interval=0.05)
    running = state.pipeline
    with pytest.raises(ConfigError) as raised:
        autotrace.install(**options)
    assert f"setting {setting!r}" in str(raised.value)
    assert state.pipeline is running and state.settings is not None


def test_a_path_like_setting_is_a_path(tmp_path: Path) -> None:
    class Where:
        def __fspath__(self) -> str:
            return str(tmp_path / "store.db")

    assert load_settings({"local_store_path": Where()}, env={}).local_store_path == tmp_path / "store.db"


def test_spans_other_threads_end_during_a_reinstall_are_exported(rx: OtlpReceiver) -> None:
    """A re-install stopped the running pipeline first (waiting up to 5 s for a slow endpoint):
    meanwhile every span of the application's other threads went nowhere, not even counted."""
    options = {"langfuse_host": rx.endpoint, "public_key": "pk-lf-1", "secret_key": "sk-lf-1",
               "unknown_tenant": "default", "integrations": (), "export_interval": 0.05}
    autotrace.install(**options)
    rx.delay(0.5)
    with autotrace.start_span("before"):
        pass
    made: list[int] = []
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            with autotrace.start_span("worker"):
                pass
            made.append(1)
            time.sleep(0.002)

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(0.1)  # the "before" span is on its way to the slow endpoint
    started = time.monotonic()
    autotrace.install(**{**options, "max_retries": 1})
    took = time.monotonic() - started
    time.sleep(0.1)
    stop.set()
    worker.join()
    assert autotrace.flush(10)
    names = [span.name for span in rx.wait_for_spans(len(made) + 1, timeout=10)]
    assert took > 0.3  # the previous pipeline did wait for the slow endpoint
    assert names.count("before") == 1 and names.count("worker") == len(made)
    stats = autotrace.stats()
    assert not any(name.startswith("spans_dropped") for name in stats), stats


def test_a_credentials_lookup_that_returns_none_raises_or_is_slow(rx: OtlpReceiver) -> None:
    """A guard (this held before the other tests here were written): one tenant's failing or slow secret store never delays
    another tenant, nor the caller."""
    def lookup(tenant: str) -> Credentials | None:
        if tenant == "boom":
            raise RuntimeError("store down")
        if tenant == "slow":
            time.sleep(2.0)
        return None if tenant == "none" else Credentials(f"pk-{tenant}", f"sk-{tenant}", host=rx.endpoint)

    autotrace.install(langfuse_host="http://127.0.0.1:9", credentials=lookup, integrations=(), export_interval=0.05)
    started = time.monotonic()
    for tenant in ("slow", "none", "boom", "ok"):
        with autotrace.tenant(tenant), autotrace.start_span(f"s-{tenant}"):
            pass
    assert time.monotonic() - started < 0.5
    assert [s.name for s in rx.wait_for_spans(1, timeout=1.5)] == ["s-ok"]  # before the slow lookup ends
    assert autotrace.flush(5)
    assert sorted(s.name for s in rx.wait_for_spans(2)) == ["s-ok", "s-slow"]
    stats = autotrace.stats()
    assert stats["spans_dropped.unknown_tenant"] == 1  # "none": the store says it has no keys
    assert stats["spans_dropped.credentials_failed"] == 1  # "boom": nothing known, no answer
    assert (stats["spans_exported.langfuse:ok"], stats["spans_exported.langfuse:slow"]) == (1, 1)


def test_keys_a_secret_store_rotated_are_used_once_langfuse_refuses_the_old_ones(
        rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """A callable's keys are cached for 300 s: after a rotation that revoked the old key, every span
    of the tenant was refused (401) and dropped until the cache expired."""
    monkeypatch.setattr(router_module, "_RECHECK_CREDENTIALS", 0.2)  # the 5 s re-check, shortened
    keys = {"current": ("pk-old", "sk-old")}
    asked: list[str] = []

    def secret_store(tenant: str) -> Credentials:
        asked.append(tenant)
        return Credentials(*keys["current"], host=rx.endpoint)

    autotrace.install(langfuse_host="http://127.0.0.1:9", credentials=secret_store, integrations=(),
                      export_interval=0.05)
    with autotrace.tenant("acme"), autotrace.start_span("before"):
        pass
    assert [s.name for s in rx.wait_for_spans(1)] == ["before"]
    keys["current"] = ("pk-new", "sk-new")
    rx.require_auth("Basic " + base64.b64encode(b"pk-new:sk-new").decode())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(rx.spans) < 2:
        with autotrace.tenant("acme"), autotrace.start_span("after"):
            pass
        time.sleep(0.1)
    assert [s.name for s in rx.spans][:2] == ["before", "after"]
    assert rx.requests[-1].headers["x-langfuse-public-key"] == "pk-new"
    assert autotrace.stats()["export_failures.langfuse:acme"] >= 1  # the refusal that made it ask again
    assert len(asked) >= 2


def test_flush_and_shutdown_with_no_timeout_use_the_default(tmp_path: Path) -> None:
    """``shutdown(None)`` raised TypeError after uninstalling, leaving the pipeline thread running and
    its spans unsent; ``flush(None)`` raised too."""
    path = tmp_path / "traces.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=(), export_interval=30.0)
    with autotrace.start_span("flushed"):
        pass
    assert autotrace.flush(None) is True  # type: ignore[arg-type]
    with autotrace.start_span("at-shutdown"):
        pass
    pipeline = state.pipeline
    assert pipeline is not None
    autotrace.shutdown(None)  # type: ignore[arg-type]
    assert state.pipeline is None and not pipeline._thread.is_alive()
    assert sorted(r["name"] for r in LocalStore(path).observations()) == ["at-shutdown", "flushed"]
    assert autotrace.stats()["spans_exported.local"] == 2
