"""Review 16: ``show``'s header named no tenant (``tenant=-``) for a trace whose root started before the
tenant was known (a request span, the tenant set inside it), while ``traces`` listed the same trace
as that tenant's. The header now gives the root's tenant, else the first observation's that has one.
A real traced program and real ``autotrace`` processes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import isolated_env

PROGRAM = textwrap.dedent("""
    import autotrace
    autotrace.install(unknown_tenant="local")  # the root, with no tenant, is stored too
    with autotrace.start_span("request"):
        with autotrace.tenant("acme"):
            with autotrace.start_generation("answer", model="m") as generation:
                generation.update(output="hello")
    autotrace.shutdown()
""")


def _autotrace(env: dict[str, str], *argv: str) -> str:
    done = subprocess.run([sys.executable, "-m", "autotrace", *argv], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout


def test_the_header_names_the_tenant_the_listing_gives(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    subprocess.run([sys.executable, "-c", PROGRAM], env=env, timeout=60, check=True)
    (listed,) = json.loads(_autotrace(env, "traces", "--json"))
    assert (listed["name"], listed["tenant"]) == ("request", "acme")
    tree = _autotrace(env, "show", listed["trace_id"], "--no-io").splitlines()
    assert [re.sub(r"  [0-9.]+ms", "", line.rsplit("  #", 1)[0]) for line in tree] == [  # durations vary
        f"trace {listed['trace_id']}  tenant=acme", "└─ [SPAN] request", "   └─ [GEN] answer  m"]
