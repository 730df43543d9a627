"""A process that installed autotrace but recorded nothing (a pre-fork server's master) has no thread
of autotrace's: the pipeline and export threads start with the first span, so a fork right after
``install()`` is a fork of a single-threaded process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import isolated_env

#: A gunicorn ``--preload`` style master: installs, forks a worker at once, then (like a master that
#: does record something) records spans from several threads at once, and exits without a flush.
_MASTER = """
import json, os, sys, threading, warnings
import autotrace

def ours():
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("autotrace"))

autotrace.install(langfuse_host=sys.argv[1], public_key="pk-lf-m", secret_key="sk-lf-m",
                  unknown_tenant="default", integrations=(), export_interval=30)
tasks = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1
report = {"at_fork": ours(), "os_threads_at_fork": tasks}
with warnings.catch_warnings(record=True) as caught:  # Python 3.12+ warns when forking a threaded process
    warnings.simplefilter("always")
    pid = os.fork()
report["fork_warnings"] = [str(warning.message) for warning in caught]
if pid == 0:
    code = 1
    try:
        with autotrace.start_span("in-worker"):
            pass
        code = 0 if autotrace.flush(10) else 2
    finally:
        os._exit(code)
report["worker_exit"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
report["after_fork"] = ours()
gate = threading.Barrier(8)

def first_span(i):
    gate.wait()
    with autotrace.start_span(f"master-{i}"):
        pass

threads = [threading.Thread(target=first_span, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
report["after_spans"] = [name for name in ours() if not name.startswith("autotrace-export")]
print(json.dumps(report))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_master_that_installed_forks_single_threaded_and_still_exports(tmp_path: Path) -> None:
    with OtlpReceiver() as rx:
        done = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", _MASTER, rx.endpoint],
                              env=isolated_env(tmp_path), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        names = sorted(s.name for s in rx.wait_for_spans(9, timeout=10))
    assert report == {"at_fork": [], "os_threads_at_fork": 1, "fork_warnings": [], "worker_exit": 0, "after_fork": [],
                      "after_spans": ["autotrace-pipeline"]}  # eight first spans at once: one thread
    assert names == ["in-worker", *(f"master-{i}" for i in range(8))]  # the master's: by the exit export


def test_flush_drains_on_its_own_thread_when_no_thread_can_be_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At interpreter exit Python 3.12 refuses new threads; there, the first span's pipeline thread
    and the first export's workers cannot start: the flush at exit still exports."""
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=())
    before = set(threading.enumerate())  # (a thread of an earlier test may still be stuck on its endpoint)
    start = threading.Thread.start

    def refused(thread: threading.Thread) -> Any:
        if thread.name.startswith("autotrace"):
            raise RuntimeError("can't create new thread at interpreter shutdown")
        return start(thread)

    monkeypatch.setattr(threading.Thread, "start", refused)
    with autotrace.tenant("acme"), autotrace.start_span("at-exit"):
        pass
    assert autotrace.flush(5) is True
    store = autotrace.local_store()
    assert store is not None
    assert [(r["name"], r["tenant"]) for r in store.observations()] == [("at-exit", "acme")]
    assert set(threading.enumerate()) - before == set()
    stats = autotrace.stats()
    assert (stats["pipeline_thread_refused"], stats["spans_exported.local"]) == (1, 1)
