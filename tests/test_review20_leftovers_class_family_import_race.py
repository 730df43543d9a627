"""``install()`` while another thread runs the code of ``langchain_core.vectorstores.base`` (or of
the embeddings module) had wrapt call the class family's import hook at once, before the module
defined its base class: the failure was only logged and no hook was left, so LangChain's vector
stores (or embedding models) stayed untraced for the process. The family now waits on a helper
thread for that import to end, then wraps; if the import failed, it hooks again for the next one."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import isolated_env

_CHILD = textwrap.dedent("""
    import importlib, importlib.machinery, json, sys, threading
    import langchain_core.runnables
    import autotrace
    from autotrace.export.local_store import LocalStore

    store_path, target, outcome = sys.argv[1:4]
    entered, release, attempts = threading.Event(), threading.Event(), []

    class Gate:  # the real module's loader, whose first run waits for the test (and may fail)
        def __init__(self, real):
            self.real = real

        def create_module(self, spec):
            return self.real.create_module(spec)

        def exec_module(self, module):
            attempts.append(1)
            if len(attempts) == 1:
                entered.set()
                release.wait(30)
                if outcome == "fails":
                    raise RuntimeError("the first import fails")
            self.real.exec_module(module)

    class Finder:
        def find_spec(self, name, path=None, target_module=None):
            if name != target:
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            spec.loader = Gate(spec.loader)
            return spec

    def first_import():
        try:
            importlib.import_module(target)
        except RuntimeError:
            pass

    sys.meta_path.insert(0, Finder())
    importing = threading.Thread(target=first_import)
    importing.start()
    assert entered.wait(30)
    assert target in sys.modules  # its code is running
    autotrace.install(local_store_path=store_path, integrations=["langchain"])
    release.set()
    importing.join()
    for thread in threading.enumerate():
        if thread.name == "autotrace-import-wait":
            thread.join(30)
    from langchain_core.embeddings import DeterministicFakeEmbedding  # a retry, if the first import failed
    from langchain_core.vectorstores import InMemoryVectorStore

    InMemoryVectorStore(DeterministicFakeEmbedding(size=2)).similarity_search("q")
    autotrace.uninstall()
    print(json.dumps({"attempts": len(attempts), "stats": {k: v for k, v in autotrace.stats().items()
                                                           if "langchain" in k or "import" in k},
                      "names": sorted(r["name"] for r in LocalStore(store_path).observations())}))
""")


@pytest.mark.parametrize("target", ["langchain_core.vectorstores.base", "langchain_core.embeddings.embeddings"])
@pytest.mark.parametrize("outcome", ["succeeds", "fails"])
def test_a_family_whose_module_is_importing_in_another_thread_at_install_is_wrapped(
        tmp_path: Path, target: str, outcome: str) -> None:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "t.db"), target, outcome],
                          env=isolated_env(tmp_path), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "attempts": 2 if outcome == "fails" else 1,
        "stats": {"integration_import_waits_abandoned": 1} if outcome == "fails" else {},
        "names": ["DeterministicFakeEmbedding.embed_query", "InMemoryVectorStore.similarity_search"]}
