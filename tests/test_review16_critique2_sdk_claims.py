"""A Langfuse SDK client with a tenant's own keys sends its spans to that tenant's project itself,
and autotrace leaves them to it (``spans_dropped.sdk_exported``), by the claim the client's filter
noted at each span's start (review 16, critique 2):

- ``autotrace.shutdown()`` (or ``uninstall``, also autotrace's own at exit when the client was made
  before the install) forgot every claim before the spans still queued were routed: each of them
  reached the project twice under one span id, the SDK's copy and autotrace's redacted one;
- a re-install forgot them as well, for the spans open across it;
- a span kept only in the local store (``unknown_tenant="local"``) left its claim behind for good.

The real ``langfuse`` package against a loopback Langfuse stand-in; each case in a fresh interpreter
(one global tracer provider per process, one SDK client per public key)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import isolated_env

_SCRIPT = """
import collections, json, os, sys
from autotrace.testing.otlp_receiver import OtlpReceiver
import autotrace

case, acme = sys.argv[1:]
with OtlpReceiver() as lf:
    os.environ.update(LANGFUSE_HOST=lf.endpoint, LANGFUSE_PUBLIC_KEY="pk-lf-1", LANGFUSE_SECRET_KEY="sk-lf-1",
                      AUTOTRACE_UNKNOWN_TENANT="local" if case == "local" else "default")
    from langfuse import Langfuse, observe
    from autotrace import _langfuse_sdk

    def install():
        autotrace.install(integrations=(), export_interval=60,
                          credentials={"acme": {"public_key": acme, "secret_key": "sk-lf-2"}})

    install()
    sdk = Langfuse(public_key=acme, secret_key="sk-lf-2", base_url=lf.endpoint)

    @observe(name="lf-obs")
    def work(text):
        return "ok"

    if case == "shutdown":
        for n in range(5):
            with autotrace.tenant("acme"):
                work(f"mail jane.doe@example.com {n}", langfuse_public_key=acme)
    elif case == "reinstall":
        with autotrace.tenant("acme"):
            with sdk.start_as_current_observation(name="across", input="mail jane.doe@example.com"):
                install()
    else:
        for n in range(5):
            work(f"mail jane.doe@example.com {n}", langfuse_public_key=acme)
    claims = len(_langfuse_sdk.claimed) if case == "local" and autotrace.flush(10) else None
    autotrace.shutdown()
    sdk.flush()
    senders = collections.defaultdict(list)  # each span's copies, by who sent them
    for span in lf.spans:
        senders[span.span_id].append(span.headers["x-langfuse-sdk-name"])
    copies = collections.Counter(",".join(sorted(names)) for names in senders.values())
    print(json.dumps({"copies": sorted(copies.items()), "claims_left": claims,
        "stats": {k: v for k, v in autotrace.stats().items() if k.startswith("spans_dropped")}}))
"""

_ACME = "pk-lf-0d7c1e2a-4b5f-4c6d-8e9f-0a1b2c3d4e5f"


def _run(tmp_path: Path, case: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, case, _ACME], capture_output=True, text=True,
                          timeout=120, env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case, spans", [("shutdown", 5), ("reinstall", 1)])
def test_spans_routed_by_a_shutdown_or_across_a_reinstall_reach_the_project_once(
        tmp_path: Path, case: str, spans: int) -> None:
    """Each span reaches the tenant's project once, by the SDK: none a second time from autotrace."""
    report = _run(tmp_path, case)
    assert report["copies"] == [["python", spans]]
    assert report["stats"] == {"spans_dropped.sdk_exported": spans}


def test_a_span_kept_only_in_the_local_store_leaves_no_claim(tmp_path: Path) -> None:
    """No tenant, ``unknown_tenant="local"``: the spans go to the local store only (and by the SDK to
    its project); their claims are taken as they are routed, none left for spans gone."""
    report = _run(tmp_path, "local")
    assert report["copies"] == [["python", 5]]
    assert report["claims_left"] == 0
