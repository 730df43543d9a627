"""A Langfuse SDK client with a tenant's own keys (review 16): the SDK exports its own spans to that
tenant's project itself, unredacted (the application's choice), and autotrace, routing the tenant's
spans to the same project, sent each of them there a second time, redacted, under the same span id
(which one Langfuse keeps is left to chance; ingestion billed twice). Now autotrace leaves those
spans to the SDK, but only when the SDK does send them to that very project itself. Keys have the
real form: autotrace's redaction masks them in the span's instrumentation scope. Each case runs in
a fresh interpreter: one global tracer provider per process, one SDK client per public key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import isolated_env

_TENANT_KEYS = """
import json, os, sys
from autotrace.testing.otlp_receiver import OtlpReceiver
import autotrace

case, acme, globex = sys.argv[1:]
with OtlpReceiver() as lf, OtlpReceiver() as elsewhere:
    os.environ.update(LANGFUSE_HOST=lf.endpoint, LANGFUSE_PUBLIC_KEY="pk-lf-1", LANGFUSE_SECRET_KEY="sk-lf-1",
                      AUTOTRACE_UNKNOWN_TENANT="default")
    from langfuse import Langfuse, observe
    autotrace.install(integrations=(), export_interval=0.05,
                      credentials={"acme": {"public_key": acme, "secret_key": "sk-lf-2"}})
    options = {"same": {"base_url": lf.endpoint + "/"}, "other_host": {"base_url": elsewhere.endpoint},
               "filtered": {"base_url": lf.endpoint, "should_export_span": lambda span: False}}[case]
    sdk = Langfuse(public_key=acme, secret_key="sk-lf-2", **options)
    other = Langfuse(public_key=globex, secret_key="sk-lf-3", base_url=lf.endpoint)

    @observe(name="lf-obs")
    def work(text):
        with autotrace.start_generation("at-gen", model="gpt-4o") as generation:
            generation.set_input(text)
        return "ok"

    names = {"pk-lf-1": "default", acme: "acme", globex: "globex"}

    def received(receiver):
        spans = sorted([s.headers["x-langfuse-sdk-name"], names.get(s.headers["x-langfuse-public-key"]), s.name,
                        s.attributes.get("langfuse.observation.input")] for s in receiver.spans)
        receiver.clear()
        return spans

    with autotrace.tenant("acme"):
        work("acme mail jane.doe@example.com", langfuse_public_key=acme)
        with other.start_as_current_observation(name="globex-obs", input="globex mail jane.doe@example.com"):
            pass
    work("mail jane.doe@example.com", langfuse_public_key=acme)
    sdk.flush()  # the tracer provider's force_flush: autotrace's export too
    from autotrace import _langfuse_sdk
    report = {"installed": received(lf), "elsewhere": received(elsewhere), "claims_left": len(getattr(_langfuse_sdk, "claimed", ()))}
    autotrace.uninstall()
    with autotrace.tenant("acme"):
        work("after", langfuse_public_key=acme)
    sdk.flush()
    report["uninstalled"] = received(lf)
    report["stats"] = {k: v for k, v in autotrace.stats().items() if k.startswith(("langfuse_sdk", "spans_dropped"))}
    print(json.dumps(report))
"""

_ACME, _GLOBEX = "pk-lf-0d7c1e2a-4b5f-4c6d-8e9f-0a1b2c3d4e5f", "pk-lf-9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
_AUTOTRACES = [
    ["autotrace", "acme", "at-gen", "acme mail <EMAIL>"],
    # another client's span: that client sends it to its own project, autotrace to the tenant's
    ["autotrace", "acme", "globex-obs", "globex mail <EMAIL>"],
    ["autotrace", "default", "at-gen", "mail <EMAIL>"],
    ["autotrace", "default", "lf-obs", '{"args": ["mail <EMAIL>"], "kwargs": {}}'],
    ["python", "globex", "globex-obs", "globex mail jane.doe@example.com"],
]
_ACMES_REDACTED_COPY = ["autotrace", "acme", "lf-obs", '{"args": ["acme mail <EMAIL>"], "kwargs": {}}']
_SDKS = [
    ["python", "acme", "lf-obs", '{"args": ["acme mail jane.doe@example.com"], "kwargs": {}}'],
    ["python", "acme", "lf-obs", '{"args": ["mail jane.doe@example.com"], "kwargs": {}}'],
]


def _run(tmp_path: Path, case: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _TENANT_KEYS, case, _ACME, _GLOBEX], capture_output=True,
                          text=True, timeout=120, env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_client_with_a_tenants_keys_sends_its_spans_to_that_project_once(tmp_path: Path) -> None:
    """The tenant's project gets the SDK's span once (the SDK's export), autotrace's generation
    once, redacted; a span of the SDK with no tenant still goes redacted to the default project too
    (autotrace does not send to the SDK's project there: the trees there stay whole), and another
    client's span (its own keys) to the tenant's project as well as, by that client, to its own."""
    report = _run(tmp_path, "same")
    assert report["installed"] == sorted(_AUTOTRACES + _SDKS)
    assert report["elsewhere"] == []
    assert report["uninstalled"] == [
        ["python", "acme", "at-gen", "after"],
        ["python", "acme", "lf-obs", '{"args": ["after"], "kwargs": {}}'],
        ["python", "globex", "at-gen", "after"],  # the SDK's own way: gen_ai spans to every client's project
    ]
    assert report["stats"] == {"langfuse_sdk_exporting": 2, "spans_dropped.sdk_exported": 1}
    assert report["claims_left"] == 0  # each routed span's claim taken: nothing kept for spans gone


@pytest.mark.parametrize("case", ["other_host", "filtered"])
def test_autotrace_keeps_its_copy_unless_the_sdk_sends_the_span_to_that_very_project(
        tmp_path: Path, case: str) -> None:
    """The same public key at another Langfuse (``other_host``), or a client whose own filter lets
    its span go nowhere (``filtered``): autotrace's redacted copy is the tenant project's only one,
    and is sent."""
    report = _run(tmp_path, case)
    assert report["installed"] == sorted([*_AUTOTRACES, _ACMES_REDACTED_COPY])
    assert report["elsewhere"] == (_SDKS if case == "other_host" else [])
    assert report["stats"] == {"langfuse_sdk_exporting": 2}
