"""Review 19: ``--since``/``--until`` with a time outside what the store's 64-bit nanosecond columns hold
(``--until 2300-01-01``: "everything", ``--since 1000-01-01``, a duration of thousands of years ago) ended
``traces`` and ``query`` with a traceback (``OverflowError: Python int too large to convert to SQLite
INTEGER``) instead of listing every trace (or none). A real traced program and real ``autotrace`` processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import autotrace_cli, isolated_env

PROGRAM = textwrap.dedent("""
    import autotrace
    autotrace.install(unknown_tenant="local")
    with autotrace.start_chain("turn"):
        with autotrace.start_tool("lookup"):
            pass
    autotrace.shutdown()
""")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = isolated_env(tmp_path_factory.mktemp("bounds"), TZ="UTC")
    subprocess.run([sys.executable, "-c", PROGRAM], env=env, timeout=60, check=True)
    return env


@pytest.mark.parametrize(("argv", "names"), [
    (("traces", "--until", "2300-01-01"), ["turn"]),
    (("traces", "--since", "1000-01-01T00:00Z"), ["turn"]),
    (("traces", "--since", "9999-12-31"), []),
    (("traces", "--since", "2300-01-01", "--until", "9999-01-01"), []),
    (("query", "has name", "--until", "9999-12-31T23:59:59+14:00"), ["turn", "lookup"]),
    (("query", "type=tool", "--since", "99999999999d"), ["lookup"]),
    (("query", "type=tool", "--since", "9" * 400 + "d"), ["lookup"]),  # float: an infinity
])
def test_a_time_beyond_the_stored_range_is_before_or_after_every_observation(
        env: dict[str, str], argv: tuple[str, ...], names: list[str]) -> None:
    done = autotrace_cli(env, None, *argv, "--json", timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert sorted(r["name"] for r in json.loads(done.stdout)) == sorted(names)
