"""An import hook that fires in one thread while another thread installs: the hook never waits for
the install. Old code waited for the install's lock inside the application's import, holding the
locks of the modules that import was running; the install, patching an integration, imported one of
those modules and waited for it: both threads hung for ever. Integrations here come from a plugin
distribution (the entry-point extension point), so that the two imports can be held in that order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_PLUGIN = '''
import sys, time
from autotrace.integrations.base import Integration

class Later(Integration):
    """Patches ``late_lib`` when the application first imports it."""
    name, distribution, module, supported = "later", "probe-plugin", "late_lib", ""

    def _instrument(self):
        self.patcher.wrap("late_lib", "answer", lambda wrapped, instance, args, kwargs: wrapped() + 1)

class Now(Integration):
    """Patches ``json`` (imported already) and, doing so, imports ``held_mod``."""
    name, distribution, module, supported = "now", "probe-plugin", "json", ""

    def _instrument(self):
        sys.modules["__main__"].installer_importing.set()
        import held_mod  # noqa: F401
        self.patcher.wrap("json", "dumps", lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs))

LATER, NOW = Later(), Now()
'''

_HELD_MOD = '''
import sys
main = sys.modules["__main__"]
main.app_importing.set()
main.go.wait(30)
import late_lib  # first import: the "later" integration's hook fires here, in the application's thread
'''

_SCRIPT = r'''
import json, sys, threading, time
import autotrace
from autotrace.install import _integrations

app_importing, installer_importing, go = threading.Event(), threading.Event(), threading.Event()

def application_import():
    import held_mod  # noqa: F401

application = threading.Thread(target=application_import, daemon=True)
application.start()
assert app_importing.wait(30)
installer = threading.Thread(target=lambda: autotrace.install(local_store="on", local_store_path=sys.argv[1],
                                                              integrations=("later", "now")), daemon=True)
installer.start()
assert installer_importing.wait(30)
time.sleep(0.3)  # the installer now waits for the application's import of held_mod
go.set()
application.join(20)
installer.join(20)
outcome = {"application_import_ended": not application.is_alive(), "install_returned": not installer.is_alive()}
if not all(outcome.values()):  # hung: nothing more can be imported
    print(json.dumps(outcome), flush=True)
    import os
    os._exit(0)
deadline = time.monotonic() + 20
while not (_integrations.get("later") and _integrations["later"].instrumented) and time.monotonic() < deadline:
    time.sleep(0.01)
import late_lib
outcome["late_lib_patched"] = late_lib.answer() == 42
outcome["deferred"] = autotrace.stats().get("integration_patches_deferred", 0)
print(json.dumps(outcome), flush=True)
'''


def test_a_hook_firing_during_another_threads_install_defers_its_patch_rather_than_deadlocking(
        tmp_path: Path) -> None:
    (tmp_path / "probe_plugin.py").write_text(_PLUGIN, encoding="utf-8")
    (tmp_path / "held_mod.py").write_text(_HELD_MOD, encoding="utf-8")
    (tmp_path / "late_lib.py").write_text("def answer():\n    return 41\n", encoding="utf-8")
    info = tmp_path / "probe_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: probe-plugin\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(
        "[autotrace.integrations]\nlater = probe_plugin:LATER\nnow = probe_plugin:NOW\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "t.db")], capture_output=True, text=True,
                          timeout=180, cwd=tmp_path, env={**_env(), "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"application_import_ended": True, "install_returned": True, "late_lib_patched": True,
                       "deferred": 1}


def _env() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if not key.startswith(("AUTOTRACE_", "LANGFUSE_"))}
