"""The LangChain integration's patches of calls that report no end when interrupted (LangChain's
retrievers, LangGraph's runnables, runtime and retries) registered new import hooks at each
install: 2 a cycle on ``langchain_core.retrievers``, 3 on ``langgraph._internal._runnable``, kept by
wrapt until the module's first import. One waits now, and a module imported between an uninstall
and the next install is patched by that install, once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import isolated_env

_CHILD = textwrap.dedent("""
    import json, sys
    import wrapt, wrapt.importer
    import langchain_core.runnables  # the integration patches at each install; retrievers not imported yet
    import autotrace

    modules = ("langchain_core.retrievers", "langgraph._internal._runnable", "langgraph.runtime",
               "langgraph.pregel._retry")
    assert not any(name in sys.modules for name in modules)
    for _ in range(4):
        autotrace.install(local_store="off", integrations=["langchain"])
        autotrace.uninstall()
    autotrace.install(local_store="off", integrations=["langchain"])
    hooks = {name: len(wrapt.importer._post_import_hooks.get(name, ())) for name in modules}
    autotrace.uninstall()
    from langchain_core.retrievers import BaseRetriever  # imported while uninstalled: not patched
    before = isinstance(BaseRetriever.__dict__["invoke"], wrapt.FunctionWrapper)
    autotrace.install(local_store="off", integrations=["langchain"])
    invoke = BaseRetriever.__dict__["invoke"]
    once = isinstance(invoke, wrapt.FunctionWrapper) and not isinstance(invoke.__wrapped__, wrapt.FunctionWrapper)
    autotrace.uninstall()
    print(json.dumps({"hooks": hooks, "before": before, "once": once}))
""")


def test_install_cycles_leave_one_hook_per_module_and_patch_once(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _CHILD], env=isolated_env(tmp_path), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "hooks": {"langchain_core.retrievers": 1, "langgraph._internal._runnable": 1, "langgraph.runtime": 1,
                  "langgraph.pregel._retry": 1},
        "before": False, "once": True}
