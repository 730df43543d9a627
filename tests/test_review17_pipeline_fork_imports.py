"""A fork while one of autotrace's threads is importing a module it imports when first needed (the
IDNA codec at an export's first connection, ``urllib.request`` at a tenant's first destination):
the child inherited that module's import lock held by a thread it does not have, and its pipeline
or export thread waited on it for good, none of the child's spans exported. Real pipeline, real
fork, a loopback OTLP receiver; the import is slowed by a finder on ``sys.meta_path`` (the window
is otherwise milliseconds wide, as in a pre-fork server forking right after a warm-up call)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import isolated_env

_FORK_DURING_AN_IMPORT = """
import importlib.abc, importlib.machinery, os, sys, threading
import autotrace
from autotrace.export.credentials import Credentials

slowed, endpoint = sys.argv[1:]
importing, go_on = threading.Event(), threading.Event()


class Slowed(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != slowed:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            importing.set()
            go_on.wait(10)
            run(module)

        spec.loader.exec_module = exec_module
        return spec


assert slowed not in sys.modules
sys.meta_path.insert(0, Slowed())
autotrace.install(langfuse_host="http://127.0.0.1:9", export_interval=0.05, integrations=(),
                  credentials={"t": Credentials("pk-t", "sk-t", host=endpoint)})
with autotrace.tenant("t"), autotrace.start_span("parent"):
    pass
assert importing.wait(10)
threading.Timer(0.5, go_on.set).start()  # the import ends half a second from now
pid = os.fork()
if pid == 0:
    with autotrace.tenant("t"), autotrace.start_span("child"):
        pass
    os._exit(0 if autotrace.flush(5) else 3)
_, status = os.waitpid(pid, 0)
assert autotrace.flush(5)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.parametrize("module", ["encodings.idna", "urllib.request"])
def test_a_fork_while_an_export_thread_imports_leaves_the_child_exporting(
        rx: OtlpReceiver, tmp_path: Path, module: str) -> None:
    """The receiver runs in this process: the one forking has made no connection before its span's export."""
    done = subprocess.run([sys.executable, "-c", _FORK_DURING_AN_IMPORT, module, rx.endpoint], capture_output=True,
                          text=True, timeout=60, env=isolated_env(tmp_path), check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"]  # the child's flush exported its span
    assert sorted(span.name for span in rx.wait_for_spans(2)) == ["child", "parent"]
