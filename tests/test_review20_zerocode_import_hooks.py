"""Review 20: each ``install()`` registered a new import hook per integration (and per class family
of an integration already patching) in wrapt's registry, which keeps a hook until its module is
first imported: an application or test suite that installs and uninstalls repeatedly, before a
library is imported, grew that registry without bound (about 9 KB a cycle), every stale hook run at
the import. One hook each now waits, whatever the cycles, and the library is still traced once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import isolated_env

_CHILD = textwrap.dedent("""
    import json, sys
    import wrapt.importer
    import langchain_core.runnables  # a LangChain application: its vector stores not imported yet
    import autotrace
    from autotrace.export.local_store import LocalStore
    from autotrace.testing.fake_openai import FakeOpenAI

    assert "openai" not in sys.modules and "langchain_core.vectorstores.base" not in sys.modules
    for _ in range(5):
        autotrace.install(local_store="off", integrations=["openai", "langchain"])
        autotrace.uninstall()
    autotrace.install(local_store_path=sys.argv[1], integrations=["openai", "langchain"])
    hooks = {name: len(wrapt.importer._post_import_hooks.get(name, ())) for name in
             ("openai", "langchain_core.vectorstores.base", "langchain_core.embeddings.embeddings")}
    import openai
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.vectorstores import InMemoryVectorStore

    with FakeOpenAI() as fake:
        openai.OpenAI(base_url=fake.base_url, api_key="k").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    InMemoryVectorStore(DeterministicFakeEmbedding(size=2)).similarity_search("q")
    autotrace.uninstall()
    names = sorted(r["name"] for r in LocalStore(sys.argv[1]).observations())
    print(json.dumps({"hooks": hooks, "names": names}))
""")


def test_install_cycles_leave_one_import_hook_each_and_trace_once(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "t.db")], env=isolated_env(tmp_path),
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["hooks"] == {"openai": 1, "langchain_core.vectorstores.base": 1,
                              "langchain_core.embeddings.embeddings": 1}
    assert found["names"] == ["DeterministicFakeEmbedding.embed_query", "InMemoryVectorStore.similarity_search",
                              "openai.chat"]
