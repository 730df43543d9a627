"""A Langfuse SDK client on the application's own tracer provider, set up after ``install()`` and so
joined to autotrace's (review 16): ``Langfuse(tracer_provider=provider)``. The joined provider's
processors get every span of autotrace's provider, and the client's processor, never looked over,
exported autotrace's generations itself, unredacted (and with autotrace's keys a second time).
Now it is judged as on autotrace's provider; the spans started on its own provider, which autotrace
never sees, it exports as without autotrace. Fresh interpreter: one global tracer provider."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import isolated_env

_JOINED = """
import json, os, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from autotrace.testing.otlp_receiver import OtlpReceiver
import autotrace

order, public_key = sys.argv[1], sys.argv[2]
with OtlpReceiver() as lf:
    os.environ.update(LANGFUSE_HOST=lf.endpoint, LANGFUSE_PUBLIC_KEY="pk-lf-1", LANGFUSE_SECRET_KEY="sk-lf-1",
                      AUTOTRACE_UNKNOWN_TENANT="default")
    from langfuse import Langfuse, observe
    autotrace.install(integrations=(), export_interval=0.05)
    provider = TracerProvider()
    if order == "joined_first":
        trace.set_tracer_provider(provider)
    sdk = Langfuse(public_key=public_key, secret_key="sk-lf-x", base_url=lf.endpoint, tracer_provider=provider)
    if order != "joined_first":
        trace.set_tracer_provider(provider)

    @observe(name="lf-obs")
    def work(text):
        with autotrace.start_generation("at-gen", model="gpt-4o") as generation:
            generation.set_input(text)
        return "ok"

    work("mail jane.doe@example.com")
    autotrace.flush(10)
    sdk.flush()
    print(json.dumps(sorted([s.headers["x-langfuse-sdk-name"], s.headers["x-langfuse-public-key"], s.name,
                             s.attributes.get("langfuse.observation.input")] for s in lf.spans)))
"""


@pytest.mark.parametrize("order", ["joined_first", "client_first"])
@pytest.mark.parametrize("public_key", ["pk-lf-1", "pk-lf-2"])
def test_a_client_on_a_joined_provider_never_exports_autotraces_spans(
        tmp_path: Path, order: str, public_key: str) -> None:
    done = subprocess.run([sys.executable, "-c", _JOINED, order, public_key], capture_output=True, text=True,
                          timeout=120, env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [
        ["autotrace", "pk-lf-1", "at-gen", "mail <EMAIL>"],
        ["python", public_key, "lf-obs", '{"args": ["mail jane.doe@example.com"], "kwargs": {}}'],
    ]
