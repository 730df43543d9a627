"""The application's own tracer provider, joined to autotrace's after ``install()`` (review 16,
critique 2): each span of autotrace's provider was handed to its processors through the Langfuse SDK
judgement's thread-local switch (~1 us a span in three calls) even when no Langfuse SDK client's
processor is among them, the usual case. Now the processors' calls are made as they are until a
Langfuse processor is added, which is then judged, and its calls made with the switch. Fresh
interpreter: one global tracer provider per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import isolated_env

_SCRIPT = """
import json, os
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
import autotrace
from autotrace import _langfuse_sdk

os.environ.update(LANGFUSE_HOST="http://127.0.0.1:9", LANGFUSE_PUBLIC_KEY="pk-lf-1", LANGFUSE_SECRET_KEY="sk-lf-1")
autotrace.install(integrations=(), export_interval=60)
provider = TracerProvider()
trace.set_tracer_provider(provider)
seen = []

class Watching(SpanProcessor):
    def on_start(self, span, parent_context=None):
        seen.append(("start", span.name, getattr(_langfuse_sdk._joined, "on", False)))

    def on_end(self, span):
        seen.append(("end", span.name, getattr(_langfuse_sdk._joined, "on", False)))

provider.add_span_processor(Watching())
with autotrace.start_span("plain"):
    pass
from langfuse import Langfuse
Langfuse(public_key="pk-lf-other", secret_key="sk-lf-other", base_url="http://127.0.0.1:9", tracer_provider=provider)
with autotrace.start_span("with-langfuse"):
    pass
print(json.dumps({"seen": seen, "stats": {k: v for k, v in autotrace.stats().items() if k.startswith("langfuse_sdk")}}))
autotrace.uninstall(0.1)
"""


def test_a_joined_providers_processors_are_called_as_they_are_until_a_langfuse_client_joins(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120,
                          env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["seen"] == [["start", "plain", False], ["end", "plain", False],
                              ["start", "with-langfuse", True], ["end", "with-langfuse", True]]
    assert report["stats"] == {"langfuse_sdk_exporting": 1}
