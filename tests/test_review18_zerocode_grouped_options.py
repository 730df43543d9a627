"""A program started with grouped interpreter options (review 18): ``python -um pkg`` (``-u`` for
unbuffered output, common in containers) or ``python -mpkg``. The bootstrap read ``-um`` as an option
without a value, so the program was ``pkg ...``, while the reloader's child (Django's ``runserver``
re-runs ``-m pkg`` with the same arguments) was ``-m pkg ...``: taken for another program, the
process that serves ran untraced, with no word."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autotrace.export.local_store import LocalStore
from tests.helpers import isolated_env

AUTOTRACE = str(Path(sys.executable).with_name("autotrace"))

#: Django's reloader for a module: the same interpreter, ``-m`` and the module, its arguments.
_MAIN = textwrap.dedent("""
    import os, subprocess, sys
    import autotrace
    from autotrace.runtime import state
    if os.environ.get("RELOADED") is None:
        subprocess.run([sys.executable, "-m", "served", *sys.argv[1:]], env={**os.environ, "RELOADED": "1"},
                       check=True)
    else:
        with autotrace.start_span("served", input=str(state.settings is not None)):
            pass
""")


@pytest.mark.parametrize("options", [["-um", "served"], ["-mserved"], ["-u", "-Wignore", "-m", "served"]])
def test_a_module_started_with_grouped_options_is_traced_in_its_reloaders_child(tmp_path: Path,
                                                                                options: list[str]) -> None:
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "__init__.py").write_text("")
    (tmp_path / "served" / "__main__.py").write_text(_MAIN)
    env = isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(tmp_path / "traces.db"),
                       AUTOTRACE_EXPORT_INTERVAL="0.05")
    done = subprocess.run([AUTOTRACE, "run", "--", sys.executable, *options, "runserver"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    records = LocalStore(tmp_path / "traces.db").observations() if (tmp_path / "traces.db").exists() else []
    assert [(r["name"], r["input"]) for r in records] == [("served", "True")]
