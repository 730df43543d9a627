"""``autotrace info`` names an integration setting that names no integration (a typo), as
``install()`` warns of it: ``AUTOTRACE_DISABLED_INTEGRATIONS=langchian`` leaves langchain traced,
and info said "no problems found" (exit 0)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import isolated_env


def test_a_mistyped_integration_name_is_a_problem(tmp_path: Path) -> None:
    env = isolated_env(tmp_path, AUTOTRACE_DISABLED_INTEGRATIONS="langchian,faiss", AUTOTRACE_INTEGRATIONS="openai")
    done = subprocess.run([sys.executable, "-m", "autotrace", "info", "--no-import", "--json"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    found = json.loads(done.stdout)
    known = ", ".join(i["name"] for i in found["integrations"])
    assert (done.returncode, found["problems"]) == (1, [f"no integration named langchian (known: {known})"])
    assert "langchain" in known.split(", ")
