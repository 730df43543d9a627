"""``install()`` while another thread is importing a library it patches: the patch waits for that
import to end. Old code patched the half-imported module at once, importing its submodules in the
middle of the other thread's import: the application's own ``import openai`` failed. Run in a fresh
interpreter (the library must not be imported yet); the import is held half-way by a finder on
``sys.meta_path`` whose loader waits before running the real module's code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_SCRIPT = r"""
import importlib.abc, importlib.machinery, json, sys, threading, time
import autotrace

half_way, go = threading.Event(), threading.Event()

class HoldHalfWay(importlib.abc.MetaPathFinder):
    # waits in the module's execution (as a slow import does), not in find_spec, which Python calls
    # holding its global import lock
    def find_spec(self, name, path, target=None):
        if name != "openai._client" or go.is_set():
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        real = spec.loader

        class Held(importlib.abc.Loader):
            def create_module(self, spec):
                return real.create_module(spec)

            def exec_module(self, module):
                half_way.set()
                go.wait(30)
                real.exec_module(module)

        spec.loader = Held()
        return spec

sys.meta_path.insert(0, HoldHalfWay())
outcome = {}

def application_import():
    try:
        import openai
        outcome["import"] = openai.OpenAI.__name__
    except Exception as exc:
        outcome["import"] = repr(exc)

importer = threading.Thread(target=application_import)
importer.start()
assert half_way.wait(30)
installer = threading.Thread(target=lambda: autotrace.install(local_store="on", local_store_path=sys.argv[1],
                                                              integrations=("openai",), export_interval=0.05))
installer.start()
installer.join(30)
outcome["install_returned_while_held"] = not installer.is_alive()
go.set()
importer.join(30)

from autotrace.install import _integrations
deadline = time.monotonic() + 30
while not _integrations["openai"].instrumented and time.monotonic() < deadline:
    time.sleep(0.01)

import openai
from autotrace.testing.fake_openai import FakeOpenAI
with FakeOpenAI() as server:
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
autotrace.flush(10)
outcome["recorded"] = [(r["type"], r["name"]) for r in autotrace.local_store().observations()]
print(json.dumps(outcome))
"""


def test_install_while_another_thread_imports_the_library_patches_it_after_that_import(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path / "t.db")], capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome == {"import": "OpenAI", "install_returned_while_held": True,
                       "recorded": [["generation", "openai.chat"]]}
