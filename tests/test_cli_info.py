"""``autotrace info``: what ``install()`` would do in an environment, run as a user runs it (a
subprocess with that environment). Integrations are tried on their real libraries; a library whose
API changed is played by integrations of a plugin distribution made here, on ``PYTHONPATH``, whose
patch points are really gone (``json.no_such_function``) or whose patching really raises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace.config import load_settings
from autotrace.diagnostics import integration_statuses

SECRETS = ("sk-lf-default-s3cret", "sk-acme-s3cret")


def _info(*args: str, env: dict[str, str] | None = None, pythonpath: Path | None = None) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AUTOTRACE_", "LANGFUSE_", "OTEL_")) and k.lower() not in (
                 "https_proxy", "http_proxy", "all_proxy", "no_proxy")}
    clean.update(env or {})
    if pythonpath is not None:
        clean["PYTHONPATH"] = str(pythonpath)
    done = subprocess.run([sys.executable, "-m", "autotrace", "info", *args], env=clean, capture_output=True,
                          text=True, timeout=120, check=False)
    for secret in SECRETS:
        assert secret not in done.stdout + done.stderr
    return done.returncode, done.stdout


LANGFUSE = {"LANGFUSE_HOST": "https://langfuse.example.com", "LANGFUSE_PUBLIC_KEY": "pk-lf-default",
            "LANGFUSE_SECRET_KEY": SECRETS[0], "AUTOTRACE_TENANT_ACME_PUBLIC_KEY": "pk-acme",
            "AUTOTRACE_TENANT_ACME_SECRET_KEY": SECRETS[1]}


def test_export_keys_settings_and_a_mistyped_variable_are_reported() -> None:
    code, out = _info("--no-import", env={**LANGFUSE, "HTTPS_PROXY": "http://proxy.corp:3128",
                                          "AUTOTRACE_DISABLED_INTEGRATIONS": "faiss",
                                          "AUTOTRACE_EXPORT_TIMEOUT": "5", "AUTOTRACE_CAPTURE_CONTNET": "false"})
    lines = out.splitlines()
    assert code == 1  # the mistyped variable is a problem: its setting stays at the default
    assert lines[1:5] == [
        "export        Langfuse at https://langfuse.example.com, via proxy proxy.corp:3128",
        "keys          default: pk-lf-default (a span without a tenant: drop); tenants listed: acme",
        "local store   off",
        "redaction     all built-in detectors; content captured",
    ]
    by_name = {line.split()[0]: line.split(None, 2)[1:] for line in lines if line.startswith("  ")}
    assert by_name["faiss"] == ["off", "turned off by disabled_integrations"]
    assert by_name["openai"] == ["found", "openai " + _version("openai") + ": patches at the first import of openai"]
    assert by_name["export_timeout"] == ["5.0", "(AUTOTRACE_EXPORT_TIMEOUT)"]
    assert by_name["secret_key"] == ["***", "(LANGFUSE_SECRET_KEY)"]
    assert lines[-2:] == ["problems", "  AUTOTRACE_CAPTURE_CONTNET is not a setting autotrace reads (did you mean "
                                      "AUTOTRACE_CAPTURE_CONTENT?)"]


def _version(distribution: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(distribution)


def test_each_installed_integration_is_patched_on_its_real_library_then_undone() -> None:
    code, out = _info("--json", env={"AUTOTRACE_INTEGRATIONS": "openai,grpc,threads"})
    found = json.loads(out)
    statuses = {i["name"]: (i["status"], i["library"], i["version"], i["patched"] > 0, i["not_patched"])
                for i in found["integrations"]}
    assert code == 0 and found["problems"] == []
    assert statuses["openai"] == ("ready", "openai", _version("openai"), True, [])
    assert statuses["grpc"] == ("ready", "grpcio", _version("grpcio"), True, [])
    assert statuses["threads"][:4] == ("ready", "python", ".".join(map(str, sys.version_info[:3])), True)
    assert statuses["langchain"][0] == "off" and found["export"]["local_store"].endswith("traces.db")


def test_the_patches_tried_are_undone_in_the_process_that_tried_them() -> None:
    import concurrent.futures.process  # imported: their pools are patched too (else at the application's import)
    import multiprocessing.pool

    original = ThreadPoolExecutor.__dict__["submit"]
    original_process = concurrent.futures.process.ProcessPoolExecutor.__dict__["submit"]
    original_result = multiprocessing.pool.ApplyResult.__dict__["__init__"]
    original_callback = concurrent.futures.Future.__dict__["add_done_callback"]
    (threads,) = [s for s in integration_statuses(load_settings(env={"AUTOTRACE_INTEGRATIONS": "threads"}))
                  if s.status != "off"]
    assert (threads.name, threads.status, threads.patched, threads.detail) == ("threads", "ready", 4, "4 patch points")
    assert ThreadPoolExecutor.__dict__["submit"] is original
    assert concurrent.futures.process.ProcessPoolExecutor.__dict__["submit"] is original_process
    assert multiprocessing.pool.ApplyResult.__dict__["__init__"] is original_result
    assert concurrent.futures.Future.__dict__["add_done_callback"] is original_callback
    assert "_taskqueue" not in multiprocessing.pool.ThreadPool.__dict__
    assert "_taskqueue" not in multiprocessing.pool.Pool.__dict__


def test_under_a_live_install_nothing_is_patched_again() -> None:
    autotrace.install(local_store="off", integrations=("threads",))
    submit = ThreadPoolExecutor.__dict__["submit"]  # the install's patch
    statuses = {s.name: s.status for s in integration_statuses(load_settings(env={}))}
    assert statuses["threads"] == "found" and ThreadPoolExecutor.__dict__["submit"] is submit


_PLUGIN = textwrap.dedent('''
    """Integrations of a library whose API changed: one patch point gone, one patching that raises,
    one library version outside the supported range."""
    import json

    from autotrace.integrations.base import Integration


    class Changed(Integration):
        name, distribution, module, supported = "changed", "probe-plugin", "json", ""

        def _instrument(self):
            self.patcher.wrap("json", "dumps", lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs))
            self.patcher.wrap("json", "no_such_function", lambda wrapped, instance, args, kwargs: None)


    class Broken(Changed):
        name = "broken"

        def _instrument(self):
            raise RuntimeError("the library's registry moved")


    class Outdated(Changed):
        name, supported = "outdated", ">=2"


    CHANGED, BROKEN, OUTDATED = Changed(), Broken(), Outdated()
''')


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    """A distribution ``probe-plugin`` 1.0 declaring three autotrace integrations."""
    (tmp_path / "probe_plugin.py").write_text(_PLUGIN, encoding="utf-8")
    info = tmp_path / "probe_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: probe-plugin\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[autotrace.integrations]\nchanged = probe_plugin:CHANGED\nbroken = probe_plugin:BROKEN\n"
        "outdated = probe_plugin:OUTDATED\n", encoding="utf-8")
    return tmp_path


def test_a_patch_point_gone_a_patching_that_raises_and_an_unsupported_version_are_problems(plugin: Path) -> None:
    code, out = _info("--json", env={"AUTOTRACE_INTEGRATIONS": "changed,broken,outdated"}, pythonpath=plugin)
    found: dict[str, Any] = json.loads(out)
    statuses = {i["name"]: (i["status"], i["detail"]) for i in found["integrations"] if i["status"] != "off"}
    assert code == 1
    assert statuses == {
        "changed": ("partial", "1 patch point; not patched: json.no_such_function (AttributeError)"),
        "broken": ("failed", "patching raised RuntimeError: the library's registry moved"),
        "outdated": ("unsupported", "probe-plugin 1.0 is outside the supported range >=2"),
    }
    assert found["problems"] == [f"integration {name} is {status}: {detail}"
                                 for name, (status, detail) in sorted(statuses.items())]
    code, text = _info(env={"AUTOTRACE_INTEGRATIONS": "changed"}, pythonpath=plugin)
    assert code == 1 and "  changed      partial      probe-plugin 1.0: 1 patch point; not patched: " \
                          "json.no_such_function (AttributeError)" in text.splitlines()


@pytest.mark.parametrize(("env", "problem"), [
    ({"LANGFUSE_HOST": "https://langfuse.example.com", "HTTPS_PROXY": "socks5://127.0.0.1:1080"},
     "the proxy in HTTPS_PROXY or ALL_PROXY is unusable: scheme 'socks5' is not supported"),
    ({"LANGFUSE_HOST": "https://langfuse.example.com"}, "no keys: neither default keys nor any tenant's are set"),
    ({"LANGFUSE_HOST": "https://langfuse.example.com", "AUTOTRACE_CREDENTIALS_FILE": "/nonexistent/tenants.toml"},
     "cannot read credentials file /nonexistent/tenants.toml (FileNotFoundError)"),
], ids=["unusable-proxy", "no-keys", "unreadable-credentials-file"])
def test_an_export_that_could_not_work_is_a_problem(env: dict[str, str], problem: str) -> None:
    code, out = _info("--json", "--no-import", env=env)
    assert code == 1 and any(p.startswith(problem) for p in json.loads(out)["problems"])


@pytest.mark.parametrize("variable", ["AUTOTRACE_ENABLED", "LANGFUSE_TRACING_ENABLED", "OTEL_SDK_DISABLED"])
def test_tracing_turned_off_is_said_with_the_variable_that_did_and_is_no_problem(variable: str) -> None:
    code, out = _info(env={variable: "true" if variable == "OTEL_SDK_DISABLED" else "false"})
    assert (code, out.splitlines()[1:]) == (0, [f"tracing       off ({variable})", "no problems found"])


@pytest.mark.parametrize(("env", "message"), [
    ({"AUTOTRACE_QUEUE_SIZE": "many"}, "AUTOTRACE_QUEUE_SIZE='many' is invalid"),
    ({"LANGFUSE_HOST": "https://langfuse.example.com", "LANGFUSE_PUBLIC_KEY": "pk-lf-1"},
     "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY must be set together"),
], ids=["not-a-number", "half-a-key-pair"])
def test_a_setting_install_would_refuse_is_a_configuration_error(env: dict[str, str], message: str) -> None:
    code, out = _info("--json", env=env)
    error = json.loads(out)["error"]
    assert (code, error["kind"]) == (2, "config") and message in error["message"]
