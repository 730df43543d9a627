"""The application's own tracer provider, set up after ``install()`` (always so under ``autotrace run``):
OpenTelemetry refuses a second global provider, so it is joined to autotrace's. Each case runs in a
fresh interpreter: OpenTelemetry sets one global tracer provider per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import isolated_env

_APP = """
import json, logging, sys
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver

logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
service = sys.argv[1]
with OtlpReceiver() as collector, OtlpReceiver() as late, OtlpReceiver() as lf:
    autotrace.install(langfuse_host=lf.endpoint, public_key="pk-lf-1", secret_key="sk-lf-1",
                      unknown_tenant="default", integrations=(), export_interval=0.05)
    provider = TracerProvider(resource=Resource.create({"service.name": service} if service else {}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=collector.endpoint + "/v1/traces")))
    trace.set_tracer_provider(provider)
    trace.set_tracer_provider(provider)  # twice: joined once
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=late.endpoint + "/v1/traces")))
    tracer = trace.get_tracer("app")

    def run(label):
        with tracer.start_as_current_span(label, attributes={"user.email": "jane.doe@example.com"}):
            with autotrace.start_generation("at-gen", model="gpt-4o") as generation:
                generation.set_input("mail jane.doe@example.com")
        autotrace.flush(10)
        trace.get_tracer_provider().force_flush()  # the global one's: the application's exporter too

    def seen(receiver):
        spans = sorted([s.scope_name, s.name, s.resource.get("service.name"), s.attributes.get("user.email"),
                        s.attributes.get("langfuse.observation.input")] for s in receiver.spans)
        receiver.clear()
        return spans

    run("installed")
    report = {"installed": {"collector": seen(collector), "late": seen(late), "langfuse": seen(lf)}}
    autotrace.uninstall()
    run("uninstalled")
    report["uninstalled"] = {"collector": seen(collector), "langfuse": seen(lf)}
    report["global_is_apps"] = trace.get_tracer_provider() is provider
    report["stats"] = {k: v for k, v in autotrace.stats().items() if k.startswith("provider_")}
    print(json.dumps(report))
"""


def _report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    assert "Overriding of current TracerProvider is not allowed" not in done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_applications_provider_set_after_install_gets_every_span_under_its_own_service_name(
        tmp_path: Path) -> None:
    """Its exporters (one added before it is set, one after) get every span as recorded, autotrace's
    too, named by its resource; Langfuse gets each once, redacted, under the same name; after
    ``uninstall()`` the application's exporter keeps getting its spans. On the old code OpenTelemetry
    refused the provider with a warning and its exporters got nothing."""
    done = subprocess.run([sys.executable, "-c", _APP, "checkout"], capture_output=True, text=True, timeout=120,
                          env=isolated_env(tmp_path), check=False)
    report = _report(done)
    recorded = [["app", "installed", "checkout", "jane.doe@example.com", None],
                ["autotrace", "at-gen", "checkout", None, "mail jane.doe@example.com"]]
    assert report["installed"] == {
        "collector": recorded,
        "late": recorded,
        "langfuse": [["app", "installed", "checkout", "<EMAIL>", None],
                     ["autotrace", "at-gen", "checkout", None, "mail <EMAIL>"]],
    }
    assert report["uninstalled"] == {
        "collector": [["app", "uninstalled", "checkout", "jane.doe@example.com", None],
                      ["autotrace", "at-gen", "checkout", None, "mail jane.doe@example.com"]],
        "langfuse": [],
    }
    assert report["global_is_apps"] is False
    assert report["stats"] == {"provider_joined": 1}


def test_a_provider_that_names_no_service_keeps_autotraces_service_name(tmp_path: Path) -> None:
    """OpenTelemetry's placeholder (``unknown_service``) of a provider that names no service is not a
    name: the spans keep the one autotrace's settings give."""
    env = {**isolated_env(tmp_path), "AUTOTRACE_SERVICE_NAME": "rag-service"}
    done = subprocess.run([sys.executable, "-c", _APP, ""], capture_output=True, text=True, timeout=120, env=env,
                          check=False)
    report = _report(done)
    assert {span[2] for part in report["installed"].values() for span in part} == {"rag-service"}
    assert len(report["installed"]["collector"]) == 2


def test_under_autotrace_run_the_applications_provider_is_joined(tmp_path: Path) -> None:
    """``autotrace run`` installs before the program's first line (and the program installs again with
    its own options): the program's own provider, set up as usual, still gets its spans, and Langfuse
    gets them redacted."""
    launcher = Path(sys.executable).with_name("autotrace")
    done = subprocess.run([str(launcher), "run", "--", sys.executable, "-c", _APP, "checkout"],
                          capture_output=True, text=True, timeout=120, env=isolated_env(tmp_path), check=False)
    report = _report(done)
    assert report["stats"] == {"provider_joined": 1}
    assert report["installed"]["collector"] == [
        ["app", "installed", "checkout", "jane.doe@example.com", None],
        ["autotrace", "at-gen", "checkout", None, "mail jane.doe@example.com"]]
    assert report["installed"]["langfuse"] == [["app", "installed", "checkout", "<EMAIL>", None],
                                               ["autotrace", "at-gen", "checkout", None, "mail <EMAIL>"]]


_AFTER_UNINSTALL = """
import json
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import autotrace

autotrace.install(integrations=(), unknown_tenant="default")
autotrace.uninstall()
exporter = InMemorySpanExporter()
provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
with trace.get_tracer("app").start_as_current_span("request"):
    with autotrace.start_retrieval("knowledge-search"):
        pass
print(json.dumps(sorted([s.name, s.resource.attributes["service.name"], s.parent is not None]
                        for s in exporter.get_finished_spans())))
"""


def test_a_provider_set_after_uninstall_records_again(tmp_path: Path) -> None:
    """After ``uninstall()`` autotrace's global provider starts no spans; the application's provider
    set up then is joined and recording resumes for it (its spans and autotrace's, nested)."""
    done = subprocess.run([sys.executable, "-c", _AFTER_UNINSTALL], capture_output=True, text=True, timeout=120,
                          env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    assert "Overriding of current TracerProvider is not allowed" not in done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [["knowledge-search", "checkout", True],
                                                                ["request", "checkout", False]]


def test_providers_joined_are_bounded_and_the_rest_refused_as_opentelemetry_does(tmp_path: Path) -> None:
    """Each joined provider is a processor on every span: at most 8 are joined, the next is refused
    with OpenTelemetry's own warning, counted."""
    script = ("import json, logging\nlogging.basicConfig()\nfrom opentelemetry import trace\n"
              "from opentelemetry.sdk.trace import TracerProvider\nimport autotrace\n"
              "autotrace.install(integrations=(), unknown_tenant='default')\n"
              "for _ in range(9):\n    trace.set_tracer_provider(TracerProvider())\n"
              "print(json.dumps({k: v for k, v in autotrace.stats().items() if k.startswith('provider_')}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"provider_joined": 8, "provider_join_refused": 1}
    assert done.stderr.count("Overriding of current TracerProvider is not allowed") == 1


def test_installs_that_set_no_global_provider_share_one(tmp_path: Path) -> None:
    """``set_global_provider=False``: each install made a provider of its own, and autotrace kept
    every one (its relay's list): growing with each install/uninstall cycle. One is made, renamed
    by the installs after it."""
    script = ("import json, importlib\nimport autotrace\ninstall = importlib.import_module('autotrace.install')\nfrom autotrace.runtime import state\n"
              "seen = []\nfor i in range(3):\n"
              "    autotrace.install(integrations=(), set_global_provider=False, service_name=f's{i}')\n"
              "    seen.append(id(state.provider))\n"
              "    name = state.provider.resource.attributes['service.name']\n    autotrace.uninstall()\n"
              "print(json.dumps({'providers': len(set(seen)), 'relayed': len(install._relayed_providers), "
              "'name': name}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"providers": 1, "relayed": 1, "name": "s2"}
