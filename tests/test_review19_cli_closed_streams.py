"""Review 19: a stream closed when ``autotrace`` starts (``2>&-``, ``>&-``), which Python makes None. With stderr
closed, every line meant for it (a failure, "more match", compare's hints) went to stdout (``out`` took a None
stream for stdout, as ``print`` does), so ``--json`` output was no longer JSON; with stdout closed, the output
was dropped without a word and the command exited 0. A real traced program and real ``autotrace`` processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import isolated_env

PROGRAM = textwrap.dedent("""
    import autotrace
    autotrace.install(unknown_tenant="local")
    with autotrace.start_chain("turn"):
        with autotrace.start_generation("answer", model="m", prompt={"name": "support", "version": 1}):
            pass
    autotrace.shutdown()
""")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = isolated_env(tmp_path_factory.mktemp("closed"))
    subprocess.run([sys.executable, "-c", PROGRAM], env=env, timeout=60, check=True)
    return env


def _closed(env: dict[str, str], redirect: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m autotrace *argv`` started by a shell with ``redirect`` (``2>&-``: stderr closed)."""
    return subprocess.run(["sh", "-c", f'exec "$@" {redirect}', "sh", sys.executable, "-m", "autotrace", *argv],
                          env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("argv", "code", "kind"), [
    (("show", "ffff", "--json"), 1, "not_found"),
    (("query", "name=(", "--json"), 2, "query"),
    (("compare", "--prompt", "support", "1", "2", "--json"), 1, "no_data"),
])
def test_with_stderr_closed_a_failure_is_still_json_on_stdout(env: dict[str, str], argv: tuple[str, ...], code: int,
                                                                kind: str) -> None:
    done = _closed(env, "2>&-", *argv)
    assert (done.returncode, done.stderr) == (code, "")
    assert json.loads(done.stdout)["error"]["kind"] == kind


def test_with_stderr_closed_more_matches_than_shown_leaves_stdout_json(env: dict[str, str]) -> None:
    done = _closed(env, "2>&-", "query", "has name", "--limit", "1", "--json")
    assert (done.returncode, done.stderr) == (0, "")
    assert [r["name"] for r in json.loads(done.stdout)] == ["answer"]  # the newest of two


def test_with_stdout_closed_the_command_fails_and_says_so(env: dict[str, str]) -> None:
    done = _closed(env, ">&-", "traces")
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "autotrace: cannot write the output: stdout is "
                                                                      "closed\n")
