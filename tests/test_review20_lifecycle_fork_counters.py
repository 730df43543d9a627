"""A forked worker's counters start at zero: it inherited the parent's, so its ``stats()`` and the
metrics ``stats_as_metrics`` reports (which a metrics backend adds up across workers) counted the
parent's spans once more in every worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import isolated_env

_APP = """
import os, sys
import autotrace
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=())
for _ in range(3):
    with autotrace.start_span("before-the-fork"):
        pass
autotrace.flush()
print("parent", autotrace.stats().get("spans_exported", 0), flush=True)
pid = os.fork()
if pid == 0:
    print("child-at-fork", autotrace.stats().get("spans_exported", 0), flush=True)
    with autotrace.start_span("in-the-child"):
        pass
    autotrace.flush()
    print("child", autotrace.stats().get("spans_exported", 0), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print("parent-after", autotrace.stats().get("spans_exported", 0), flush=True)
"""


def test_a_forked_child_counts_only_its_own_spans(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _APP, str(tmp_path / "traces.db")],
                          env=isolated_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split() for line in done.stdout.splitlines())
    assert lines == {"parent": "3", "child-at-fork": "0", "child": "1", "parent-after": "3"}
