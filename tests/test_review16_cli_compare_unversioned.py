"""Review 16: a prompt recorded by name alone (``prompt="support"``: no version) showed in ``compare``'s
list of stored versions as ``None``, and ``compare --prompt support None 2`` compared those generations
as if ``None`` were a version. They are no version's samples: left out, and named as such when they
are all a prompt has. A real traced program and real ``autotrace compare`` processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import isolated_env


def _record(tmp_path: Path, prompts: str) -> dict[str, str]:
    env = isolated_env(tmp_path)
    program = textwrap.dedent(f"""
        import autotrace
        autotrace.install()
        with autotrace.tenant("acme"):
            for prompt in {prompts}:
                with autotrace.start_generation("answer", model="m", prompt=prompt) as generation:
                    generation.update(output="hello")
        autotrace.shutdown()
    """)
    subprocess.run([sys.executable, "-c", program], env=env, timeout=60, check=True)
    return env


def _compare(env: dict[str, str], *versions: str) -> tuple[int, str, list[str]]:
    done = subprocess.run([sys.executable, "-m", "autotrace", "compare", "--prompt", "support", *versions], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stdout.splitlines()[0], done.stderr.splitlines()


@pytest.mark.parametrize("versions", [("1", "2"), ("None", "2")])
def test_a_prompt_without_a_version_is_no_version(tmp_path: Path, versions: tuple[str, str]) -> None:
    env = _record(tmp_path, '["support", ("support", 2), ("support", 3), "support"]')
    db = tmp_path / "home" / "traces.db"
    assert _compare(env, *versions) == (
        1, f"prompt 'support': version {versions[0]} (n=0) vs 2 (n=1), alpha=0.05",
        ["autotrace compare: stored versions of prompt 'support': 2, 3",
         f"autotrace compare: no generations of prompt 'support' version {versions[0]} in {db}"])


def test_a_prompt_recorded_only_without_a_version_is_named_as_such(tmp_path: Path) -> None:
    env = _record(tmp_path, '["support", "support"]')
    assert _compare(env, "1", "2")[2][0] == "autotrace compare: the stored generations of prompt 'support' record no version"
