"""Review 20 (critique D) of the class families' import-race wait: it took ``install``'s lock by
value, and a forked child gets a new one (its copy of the old one stays held by the thread that
forked). In a preloaded server's worker the helper thread waited for the old one for good: the
family whose module another thread was importing at ``install()`` stayed untraced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import isolated_env
from tests.test_review20_leftovers_class_family_import_race import _CHILD

_FORKED = """
import os, sys
import autotrace
import autotrace.integrations.class_family  # imported before the fork, as a preloaded app has it

pid = os.fork()
if pid:
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
try:
""" + "".join(f"    {line}\n" for line in _CHILD.replace("thread.join(30)", "thread.join(10)").splitlines()) + """
finally:
    sys.stdout.flush()
    os._exit(0)
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="fork")
def test_a_forked_workers_family_whose_module_is_importing_at_install_is_wrapped(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _FORKED, str(tmp_path / "t.db"), "langchain_core.vectorstores.base",
                           "succeeds"], env=isolated_env(tmp_path), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    # before: the helper thread still waiting after 10 s, no similarity_search recorded
    assert json.loads(done.stdout) == {
        "attempts": 1, "stats": {},
        "names": ["DeterministicFakeEmbedding.embed_query", "InMemoryVectorStore.similarity_search"]}
