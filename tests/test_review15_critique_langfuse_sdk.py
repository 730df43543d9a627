"""A Langfuse SDK client made lazily, while a span is open (review 15): that span ended before any
other started, so the client's processor was never judged: it exported the span itself, unredacted
(and autotrace exported it too). Fresh interpreter: one global tracer provider per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import isolated_env

_LAZY_CLIENT = """
import json, os
from opentelemetry import trace
from autotrace.testing.otlp_receiver import OtlpReceiver
import autotrace

with OtlpReceiver() as lf:
    os.environ.update(LANGFUSE_HOST=lf.endpoint, LANGFUSE_PUBLIC_KEY="pk-lf-1", LANGFUSE_SECRET_KEY="sk-lf-1",
                      AUTOTRACE_UNKNOWN_TENANT="default")
    autotrace.install(integrations=(), export_interval=0.05)
    other = trace.get_tracer("openinference.instrumentation.openai")
    from langfuse import get_client
    with other.start_as_current_span("ChatCompletion", attributes={"gen_ai.request.model": "gpt-4o",
                                                                   "input.value": "mail jane.doe@example.com"}):
        sdk = get_client()  # first used inside the call
    sdk.flush()
    print(json.dumps({"langfuse": sorted([s.headers["x-langfuse-sdk-name"], s.name, s.attributes.get("input.value")]
                                         for s in lf.spans),
                      "stats": {k: v for k, v in autotrace.stats().items() if k.startswith("langfuse_sdk")}}))
"""


def test_a_client_made_inside_a_span_never_exports_it_unredacted(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _LAZY_CLIENT], capture_output=True, text=True, timeout=120,
                          env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"langfuse": [["autotrace", "ChatCompletion", "mail <EMAIL>"]],
                      "stats": {"langfuse_sdk_export_taken_over": 1}}
