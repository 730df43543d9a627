"""Review 19: the local store on a disk that fills up and frees again. A real full disk: a small
tmpfs mounted in a mount namespace of the child process's own (as root; the host's mounts are never
touched), filled with a file until ENOSPC, the file then removed.

Found: a store a full disk could not create at ``install()`` was off for the life of the process
(the spans of a container started on a full ``/tmp`` were dropped long after space returned); a
batch a full disk failed was counted and logged as an internal error of autotrace's, the log naming
a line of autotrace's code, not the full disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs a tmpfs in a mount namespace")

_COUNTERS = ("local_store_unavailable", "spans_dropped.no_destination", "spans_dropped.export_failed",
             "export_failures.local", "spans_exported.local", "internal_errors.export.local")

_CHILD = textwrap.dedent("""
    import json, os, sys
    import autotrace
    from autotrace.export.local_store import LocalStore, StoreError

    directory, started_full = sys.argv[1], sys.argv[2] == "full"
    path = os.path.join(directory, "traces.db")

    def fill():
        with open(os.path.join(directory, "filler"), "wb", buffering=0) as file:
            try:
                while True:
                    file.write(bytes(4096))
            except OSError:
                pass

    def trace(name, size=0):
        with autotrace.start_span(name) as span:
            span.update(input="x" * size)
        return autotrace.flush(30)

    if started_full:
        fill()
    autotrace.install(local_store="on", local_store_path=path, integrations=(), max_retries=1)
    steps = {"store": autotrace.local_store() is not None}
    if not started_full:
        steps["before"] = trace("before")
        fill()
        steps["full"] = trace("full", 60_000)
    os.remove(os.path.join(directory, "filler"))
    steps["after"] = trace("after")
    stats = autotrace.stats()
    try:
        names = sorted(o["name"] for o in LocalStore(path, read_only=True).observations())
    except StoreError as exc:  # (no store made)
        names = [str(exc)]
    print(json.dumps([steps, names, stats]))
""")
#: The child in a mount namespace of its own with a 2 MiB tmpfs at ``$1``; exit 97 when none can be made.
_ON_SMALL_DISK = 'mount -t tmpfs -o size=2m tmpfs "$1" || exit 97; exec "$2" -c "$3" "$1" "$4"'


def _on_small_disk(tmp_path: Path, started: str) -> tuple[Any, str]:
    """Run ``_CHILD`` on a small tmpfs: what it printed, and its stderr (autotrace's log)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}
    try:
        done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", _ON_SMALL_DISK, "sh",
                               str(disk), sys.executable, _CHILD, started], capture_output=True, text=True,
                              timeout=120, env=env)
    except FileNotFoundError:
        pytest.skip("no unshare here")
    if done.returncode == 97 or "unshare failed" in done.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    steps, names, stats = json.loads(done.stdout)
    return [steps, names, {name: stats[name] for name in _COUNTERS if name in stats}], done.stderr


def test_a_store_a_full_disk_could_not_create_at_install_is_made_once_space_returns(tmp_path: Path) -> None:
    result, log = _on_small_disk(tmp_path, "full")
    assert result == [{"store": True, "after": True}, ["after"], {"spans_exported.local": 1}]
    assert "unavailable" not in log


def test_a_batch_a_full_disk_failed_is_said_as_such_and_the_store_goes_on(tmp_path: Path) -> None:
    """Retried, then dropped (counted) as any failed export, with the disk named; not an internal error."""
    result, log = _on_small_disk(tmp_path, "empty")
    assert result == [{"store": True, "before": True, "full": True, "after": True}, ["after", "before"],
                      {"spans_dropped.export_failed": 1, "export_failures.local": 2, "spans_exported.local": 2}]
    assert "internal error" not in log
    path = tmp_path / "disk" / "traces.db"
    assert (f"autotrace: export to local failed (disk full: database or disk is full: {path}); "
            "retrying with backoff") in log
    assert f"autotrace: export to local failed (disk full: database or disk is full: {path}); batch dropped" in log
