"""autotrace beside the application's own OpenTelemetry set-up and beside the Langfuse SDK, in one
process. Each case runs in a fresh interpreter: OpenTelemetry sets one global tracer provider per
process, and the Langfuse SDK keeps one client per public key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import isolated_env

_LANGFUSE_SDK_BESIDE = """
import json, logging, os, sys
from autotrace.testing.otlp_receiver import OtlpReceiver
import autotrace

order, keys = sys.argv[1], sys.argv[2]
logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
with OtlpReceiver() as lf:
    os.environ.update(LANGFUSE_HOST=lf.endpoint, LANGFUSE_PUBLIC_KEY="pk-lf-1", LANGFUSE_SECRET_KEY="sk-lf-1",
                      AUTOTRACE_UNKNOWN_TENANT="default")
    from langfuse import Langfuse, get_client, observe

    def client():
        if keys == "other":
            return Langfuse(public_key="pk-lf-2", secret_key="sk-lf-2", base_url=lf.endpoint)
        return get_client()

    if order == "before":
        sdk = client()
    autotrace.install(integrations=(), export_interval=0.05)
    if order == "after":
        sdk = client()

    @observe(name="lf-obs")
    def work(text):
        with autotrace.start_generation("at-gen", model="gpt-4o") as generation:
            generation.set_input(text)
        return "ok"

    def received():
        sdk.flush()  # the tracer provider's force_flush: autotrace's export too
        spans = sorted([s.headers["x-langfuse-sdk-name"], s.headers["x-langfuse-public-key"], s.name,
                        s.attributes.get("langfuse.observation.input"),
                        s.attributes.get("langfuse.internal.is_app_root")] for s in lf.spans)
        lf.clear()
        return spans

    work("mail jane.doe@example.com")
    installed = received()
    autotrace.uninstall()
    work("after uninstall")
    print(json.dumps({"installed": installed, "uninstalled": received(),
                      "stats": {k: v for k, v in autotrace.stats().items() if k.startswith("langfuse_sdk")}}))
"""

_APP_PROVIDER_FIRST = """
import json, sys
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver

with OtlpReceiver() as collector, OtlpReceiver() as lf:
    provider = TracerProvider()
    own = BatchSpanProcessor(OTLPSpanExporter(endpoint=collector.endpoint + "/v1/traces"))
    provider.add_span_processor(own)
    trace.set_tracer_provider(provider)
    autotrace.install(langfuse_host=lf.endpoint, public_key="pk-lf-1", secret_key="sk-lf-1",
                      unknown_tenant="default", integrations=(), export_interval=0.05)
    tracer = trace.get_tracer("app")

    def run(label):
        with tracer.start_as_current_span(label, attributes={"user.email": "jane.doe@example.com"}):
            with autotrace.start_generation("at-gen", model="gpt-4o") as generation:
                generation.set_input("mail jane.doe@example.com")
        autotrace.flush(10)
        provider.force_flush()

    def seen(receiver):
        spans = sorted([s.scope_name, s.name, s.attributes.get("user.email"),
                        s.attributes.get("langfuse.observation.input")] for s in receiver.spans)
        receiver.clear()
        return spans

    run("installed")
    report = {"installed": {"collector": seen(collector), "langfuse": seen(lf)}}
    autotrace.uninstall()
    run("uninstalled")
    report["uninstalled"] = {"collector": seen(collector), "langfuse": seen(lf)}
    processors = provider._active_span_processor._span_processors
    report["own_kept"] = processors[0] is own
    print(json.dumps(report))
"""


def _run(tmp_path: Path, script: str, *args: str) -> tuple[dict[str, Any], str]:
    env = isolated_env(tmp_path)
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120,
                          env={**env, "AUTOTRACE_HOME": str(tmp_path / "home")}, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


@pytest.mark.parametrize("order", ["before", "after"])
def test_a_langfuse_sdk_client_with_autotraces_keys_sends_each_span_once_redacted(tmp_path: Path, order: str) -> None:
    """``get_client()`` with the keys autotrace sends to: every span went to Langfuse twice, once
    redacted by autotrace and once as recorded by the SDK's own processor (autotrace's generations
    too: they carry ``gen_ai.*`` attributes). Now autotrace alone exports them, with the SDK's mark
    of the span Langfuse shows as the trace's root, whether the client was made before or after
    ``install()``; after ``uninstall()`` the SDK exports again, as without autotrace."""
    report, _ = _run(tmp_path, _LANGFUSE_SDK_BESIDE, order, "same")
    assert report["installed"] == [
        ["autotrace", "pk-lf-1", "at-gen", "mail <EMAIL>", None],
        ["autotrace", "pk-lf-1", "lf-obs", '{"args": ["mail <EMAIL>"], "kwargs": {}}', True],
    ]
    assert report["uninstalled"] == [
        ["python", "pk-lf-1", "at-gen", "after uninstall", None],
        ["python", "pk-lf-1", "lf-obs", '{"args": ["after uninstall"], "kwargs": {}}', True],
    ]
    assert report["stats"] == {"langfuse_sdk_export_taken_over": 1}


def test_a_langfuse_sdk_client_with_other_keys_keeps_exporting_its_own_spans_only(tmp_path: Path) -> None:
    """A Langfuse SDK client of another project keeps exporting its own spans there (autotrace does
    not send there), said once; autotrace's spans leave only through autotrace, redacted."""
    report, stderr = _run(tmp_path, _LANGFUSE_SDK_BESIDE, "after", "other")
    assert report["installed"] == [
        ["autotrace", "pk-lf-1", "at-gen", "mail <EMAIL>", None],
        ["autotrace", "pk-lf-1", "lf-obs", '{"args": ["mail <EMAIL>"], "kwargs": {}}', True],
        ["python", "pk-lf-2", "lf-obs", '{"args": ["mail jane.doe@example.com"], "kwargs": {}}', True],
    ]
    assert report["stats"] == {"langfuse_sdk_exporting": 1}
    assert stderr.count("a Langfuse SDK client with other keys than autotrace's default project") == 1


def test_the_applications_provider_set_first_keeps_its_exporter_and_gets_a_redacted_copy_to_langfuse(
        tmp_path: Path) -> None:
    """The application's provider, set before ``install()``: its collector keeps getting every span
    as recorded (autotrace's too), Langfuse gets each once, redacted; after ``uninstall()`` the
    application's processor is untouched and still exports, and nothing more goes to Langfuse."""
    report, _ = _run(tmp_path, _APP_PROVIDER_FIRST)
    assert report["installed"] == {
        "collector": [["app", "installed", "jane.doe@example.com", None],
                      ["autotrace", "at-gen", None, "mail jane.doe@example.com"]],
        "langfuse": [["app", "installed", "<EMAIL>", None], ["autotrace", "at-gen", None, "mail <EMAIL>"]],
    }
    assert report["uninstalled"] == {
        "collector": [["app", "uninstalled", "jane.doe@example.com", None],
                      ["autotrace", "at-gen", None, "mail jane.doe@example.com"]],
        "langfuse": [],
    }
    assert report["own_kept"] is True
