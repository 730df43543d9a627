"""A Langfuse SDK client with a tenant's keys claims its spans at their start (``_langfuse_sdk``:
the SDK exports them to that tenant's project itself, so autotrace does not send a copy there).
The span pipeline's own drops (queue full, redaction failed, shutdown...) left their claims in the
bounded claims map: once 16,384 such drops had filled it, every new claim pushed out the oldest
live one, and a long-lived SDK span (a request's or a batch job's root) reached the tenant's
project twice, the SDK's copy and autotrace's redacted one under the same span id. Real SDK, in a
fresh interpreter (one global tracer provider per process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import isolated_env

_DROPS_FILL_THE_CLAIMS = """
import json, os, sys, threading
from autotrace.testing.otlp_receiver import OtlpReceiver
import autotrace
from autotrace import _langfuse_sdk

acme = "pk-lf-0d7c1e2a-4b5f-4c6d-8e9f-0a1b2c3d4e5f"
gate, holding = threading.Event(), threading.Event()

def hold(key, value, span_type):  # holds the pipeline thread while the queue overflows
    if value == "hold the pipeline":
        holding.set()
        gate.wait(60)
    return value

with OtlpReceiver() as lf:
    os.environ.update(LANGFUSE_HOST=lf.endpoint, LANGFUSE_PUBLIC_KEY="pk-lf-1", LANGFUSE_SECRET_KEY="sk-lf-1")
    from langfuse import Langfuse
    autotrace.install(integrations=(), export_interval=0.05, queue_size=8, redact=[hold],
                      credentials={"acme": {"public_key": acme, "secret_key": "sk-lf-2"}})
    sdk = Langfuse(public_key=acme, secret_key="sk-lf-2", base_url=lf.endpoint)
    with autotrace.tenant("acme"):
        outer = sdk.start_observation(name="outer")
        with autotrace.start_span("holder", input="hold the pipeline"):
            pass
        holding.wait(10)
        for _ in range(_langfuse_sdk._MAX_CLAIMED + 100):
            sdk.start_observation(name="step").end()
        gate.set()
        sdk.flush()  # the provider's: autotrace's queue too
        outer.end()
    sdk.flush()
    print(json.dumps({
        "outer": sorted(s.headers["x-langfuse-sdk-name"] for s in lf.spans if s.name == "outer"),
        "claims_left": len(_langfuse_sdk.claimed),
        "stats": {k: v for k, v in autotrace.stats().items() if k.startswith("spans_dropped")}}))
"""


def test_spans_the_pipeline_drops_leave_no_claim_that_pushes_out_a_live_spans(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _DROPS_FILL_THE_CLAIMS], capture_output=True, text=True,
                          timeout=180, env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["outer"] == ["python"]  # the SDK's export only: no second, redacted copy from autotrace
    assert report["claims_left"] == 0
    # the steps past the queue's 8 dropped; those 8 and the outer span left to the SDK
    assert report["stats"] == {"spans_dropped.queue_full": 16_384 + 100 - 8, "spans_dropped.sdk_exported": 9}
