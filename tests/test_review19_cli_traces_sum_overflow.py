"""Review 19: ``autotrace traces`` summed a trace's token totals with SQLite's integer ``SUM``, which fails the
whole query past 2**63 ("integer overflow"): one trace recording absurd usage (a provider's bogus count, a
timestamp passed as usage) made ``traces`` fail for every trace in the store ("cannot read local store",
exit 1) until retention dropped it; totals past a float's range (stored as REAL) summed to an infinity
that ended the command with a traceback (``int(inf)``). A real traced program and real ``autotrace``
processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.helpers import autotrace_cli, isolated_env

PROGRAM = textwrap.dedent("""
    import autotrace
    autotrace.install(unknown_tenant="local")
    with autotrace.start_chain("ok"):
        with autotrace.start_generation("g", model="m") as g:
            g.update(usage={"input": 1, "output": 1, "total": 2})
    for name, total in (("past-int64", 2**62 + 1), ("past-float", 10**308)):
        with autotrace.start_chain(name):
            for _ in range(2):
                with autotrace.start_generation("g", model="m") as g:
                    g.update(usage={"total": total})
    autotrace.shutdown()
""")


def test_one_trace_with_absurd_token_totals_does_not_fail_the_listing(tmp_path: Path) -> None:
    env = isolated_env(tmp_path)
    subprocess.run([sys.executable, "-c", PROGRAM], env=env, timeout=60, check=True)
    done = autotrace_cli(env, None, "traces", "--json", timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert [(s["name"], s["tokens"]) for s in json.loads(done.stdout)] == [
        ("past-float", None),  # 2e308: no number, as JSON (and a float) cannot hold it
        ("past-int64", float(2**63 + 2)),  # summed as floats: exact below 2**53, rounded beyond
        ("ok", 2)]
    text = autotrace_cli(env, None, "traces", timeout=60)
    assert (text.returncode, text.stderr) == (0, "")
    assert [row.split()[1:7:3] for row in text.stdout.splitlines()[1:]] == [  # NAME and TOKENS
        ["past-float", "-"], ["past-int64", "9223372036854775808"], ["ok", "2"]]
