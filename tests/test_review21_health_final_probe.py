"""A flush while the Langfuse host is in the cool-down after it stopped answering (``autotrace.flush()``,
or the last export of a process that ends without a shutdown: SIGTERM, ``os.exec*``): the host may be
back, so the flush probes it at once, as a shutdown does, instead of waiting out the cool-down (and
losing every buffered span with the process)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import isolated_env
from tests.test_review19_hosthealth_breaker import Host

TENANTS = ("t0", "t1", "t2")

CHILD = """
import sys, time
import autotrace
from autotrace.export import _host_health, workers
_host_health.COOL_DOWN = 600.0  # no probe of its own before the process ends
workers._STUCK_AFTER = 1e9  # one export thread: three requests time out one after another
from autotrace.export.credentials import Credentials
url, how = sys.argv[1], sys.argv[2]
tenants = ("t0", "t1", "t2")  # TENANTS
autotrace.install(langfuse_host=url, integrations=(), local_store="off", export_interval=0.05, export_timeout=0.5,
                  export_workers=1, max_retries=5,
                  credentials={name: Credentials("pk-" + name, "sk-" + name, host=url) for name in tenants})
for name in tenants:
    with autotrace.tenant(name):
        with autotrace.start_span("span-" + name):
            pass
while autotrace.stats().get("export_host_paused", 0) < 1:
    time.sleep(0.01)
print("paused", flush=True)
sys.stdin.readline()  # the host answers now
import os
if how == "exec":
    os.execv(sys.executable, [sys.executable, "-c", "raise SystemExit(3)"])
if how == "flush":  # ``autotrace.flush()`` alone, then no exit export (``os._exit``)
    os._exit(0 if autotrace.flush(5.0) else 4)
for _ in range(600):  # short sleeps: the handler runs soon whichever thread the signal reached
    time.sleep(0.1)
"""


@pytest.fixture
def host() -> Iterator[Host]:
    served = Host()
    yield served
    served.close()


@pytest.mark.parametrize(("how", "status"), [("sigterm", -signal.SIGTERM), ("exec", 3), ("flush", 0)])
def test_the_last_export_of_a_process_ending_probes_a_paused_host_that_is_back(
        host: Host, tmp_path: Path, how: str, status: int) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, host.url, how], env=isolated_env(tmp_path),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "paused\n"
        host.answer.set()
        child.stdin.write("go\n")
        child.stdin.flush()
        if how == "sigterm":
            child.send_signal(signal.SIGTERM)
        try:
            _, err = child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            _, err = child.communicate()
            pytest.fail(f"the child did not end: {err}")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == status, err
    # three requests timed out (each tenant's batch, once), then the probe and the rest got through
    assert sorted(host.names) == [f"span-{name}" for name in TENANTS], err
