"""``install()`` while another thread is importing an integration's library has wrapt call the
import hook at once, which waits on a helper thread for that import to end; wrapt then keeps no
hook for the module. When that import failed (an import error the application handles and retries
later), the library's next, successful import was never patched: tracing stayed off for it for the
process's life. The hook waits again now, so the next import is patched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import isolated_env

_PLUGIN = textwrap.dedent("""
    from autotrace.integrations.base import Integration

    CALLS = []

    class SlowIntegration(Integration):
        name = "slowint"
        distribution = "slowint"
        module = "slowmod"

        def _instrument(self):
            import slowmod
            CALLS.append(slowmod.__name__)
""")

# its first import waits for the test, then fails; the next one succeeds
_MODULE = textwrap.dedent("""
    import builtins

    entered, release, attempts = builtins.slowmod_gate
    attempts.append(1)
    if len(attempts) == 1:
        entered.set()
        release.wait(30)
        raise RuntimeError("the first import fails")
""")

_CHILD = textwrap.dedent("""
    import builtins, json, threading, time
    import autotrace

    entered, release = threading.Event(), threading.Event()
    builtins.slowmod_gate = (entered, release, [])

    def first_import():
        try:
            import slowmod
        except RuntimeError:
            pass

    importing = threading.Thread(target=first_import)
    importing.start()
    assert entered.wait(30)
    autotrace.install(local_store="off", integrations=["slowint"])  # slowmod is being imported
    release.set()
    importing.join()
    deadline = time.monotonic() + 30
    while not autotrace.stats().get("integration_import_waits_abandoned") and time.monotonic() < deadline:
        time.sleep(0.01)
    import slowmod  # the application tries again: it succeeds
    import slowint_plugin
    print(json.dumps({"abandoned": autotrace.stats().get("integration_import_waits_abandoned"),
                      "instrumented": slowint_plugin.CALLS}))
    autotrace.uninstall()
""")


def test_a_library_whose_import_failed_while_installing_is_patched_at_its_next_import(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "slowint-1.0.dist-info").mkdir(parents=True)
    (site / "slowint-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: slowint\nVersion: 1.0\n")
    (site / "slowint-1.0.dist-info" / "entry_points.txt").write_text(
        "[autotrace.integrations]\nslowint = slowint_plugin:SlowIntegration\n")
    (site / "slowint_plugin.py").write_text(_PLUGIN)
    (site / "slowmod.py").write_text(_MODULE)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", _CHILD], env=isolated_env(tmp_path, PYTHONPATH=path),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"abandoned": 1, "instrumented": ["slowmod"]}
