"""An application whose global tracer provider is not OpenTelemetry SDK's (a no-op one, another
vendor's): OpenTelemetry refuses to replace it, so autotrace records on a provider of its own. Run
in a fresh interpreter: OpenTelemetry sets one global tracer provider per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import isolated_env

_APP = """
import importlib, json, logging, sys
from opentelemetry import trace
import autotrace
from autotrace.export.local_store import LocalStore
from autotrace.runtime import state

logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
install = importlib.import_module("autotrace.install")
trace.set_tracer_provider(trace.NoOpTracerProvider())  # the application's: no SDK one
seen = []
for i in range(3):
    autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=(), service_name=f"svc-{i}")
    autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=(), service_name=f"svc-{i}b")
    seen.append(id(state.provider))
    with autotrace.start_span(f"span-{i}"):
        pass
    autotrace.uninstall()
spans = LocalStore(sys.argv[1], read_only=True).observations()
print(json.dumps({"providers": len(set(seen)), "relayed": len(install._relayed_providers),
                  "spans": sorted(s["name"] for s in spans), "global_kept": type(trace.get_tracer_provider()).__name__}))
"""


def test_installs_under_a_global_provider_not_the_sdks_share_one_of_their_own_and_say_so(tmp_path: Path) -> None:
    """Each install made a provider anew, tried to make it global (OpenTelemetry's "Overriding ... is
    not allowed" warning, once per install), and autotrace kept every one: growing with each
    install, never released. One is made, reused by the installs after it, and autotrace says once
    why the global provider's spans are not its own."""
    done = subprocess.run([sys.executable, "-c", _APP, str(tmp_path / "t.db")], capture_output=True, text=True,
                          timeout=120, env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "providers": 1, "relayed": 1, "spans": ["span-0", "span-1", "span-2"], "global_kept": "NoOpTracerProvider"}
    assert "Overriding of current TracerProvider is not allowed" not in done.stderr
    assert done.stderr.count("the global tracer provider (NoOpTracerProvider) is not OpenTelemetry SDK's") == 1
