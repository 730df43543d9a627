"""The read commands as a demanding user meets them: wide (CJK, emoji) names keep the trace list's
columns in line, a name ``show`` prints escaped can be queried as printed, metadata keys with dots
can be queried, ``info --db`` reports that store, and an empty ``--tenant`` is refused."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

import autotrace
from autotrace import cli
from tests.helpers import Traced, isolated_env

Run = tuple[int, str, str]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_trace_list_columns_line_up_with_wide_names(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    """A CJK or emoji trace name takes two terminal columns a character: padded and cut by characters, it
    pushed TENANT and every later column of its row out of line (a name of 15 CJK characters took 30
    columns where 24 were meant)."""
    for name, tenant in (("日本語" * 5, "acme"), ("ok 🎉", "acme"), ("plain", "acme")):
        with autotrace.tenant(tenant), autotrace.trace_attributes(name=name), autotrace.start_span("s"):
            pass
    traced.records()
    code, out, err = _run(capsys, "--db", str(traced.path), "traces")
    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    cells = sorted(re.split(r" +[0-9.]+ms", row[34:])[0] for row in rows)  # NAME and TENANT, up to DURATION
    assert cells == ["ok 🎉" + " " * 21 + "acme", "plain" + " " * 21 + "acme", "日本語日本語日本語日本…   acme"]
    assert {_columns(row) for row in rows} == {len(header) - 2}  # in columns, as the header (but ERR: one digit)


def _columns(text: str) -> int:
    """``text``'s width on a terminal (this test's characters: CJK and emoji two columns, others one)."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def test_a_name_is_queried_as_show_prints_it(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    """``show`` prints a control or invisible character of a name as ``\\x1b`` or ``\\u200b``; a query
    with that text read ``\\x`` as ``x`` and found nothing, so such a name (model output making its way
    into a span name) could not be looked for at all."""
    with autotrace.start_chain("root\x1b]0;x\x07") as root:
        with autotrace.start_tool("t\u200bool\r"):
            pass
    traced.records()
    db = str(traced.path)
    _, shown, _ = _run(capsys, "--db", db, "show", root.trace_id)
    assert "[CHAIN] root\\x1b]0;x\\x07 " in shown and "[TOOL] t\\u200bool\\r " in shown
    for query, names in (("name='root\\x1b]0;x\\x07'", ["root\x1b]0;x\x07"]), ('name="t\\u200bool\\r"', ["t\u200bool\r"]),
                         ('name~"\\u200B"', ["t\u200bool\r"]), ("name~'\\x1B'", ["root\x1b]0;x\x07"]),
                         ("name='\\q'", [])):  # another escaped character stands for itself, as before
        code, out, err = _run(capsys, "--db", db, "query", query, "--json")
        assert (code, [r["name"] for r in json.loads(out)]) == (0, names), (query, err)
    for query, column in (("name~'\\x'", 7), ("name~'ab\\u20'", 9)):  # no longer read as 'x' or 'u20'
        code, out, err = _run(capsys, "--db", db, "query", query, "--json")
        assert (code, json.loads(out)["error"]["column"]) == (2, column), err


def test_metadata_keys_with_dots_can_be_queried(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    """``metadata.KEY`` for a key such as ``app.version`` (the OTel style) split the key at its dot and
    never matched; the nested reading of ``metadata.o.z`` still comes first."""
    with autotrace.start_span("dotted", metadata={"app.version": "1.2", "o": {"z": 1}, "o.z": 2, "k8s.pod.name": "p-1"}):
        pass
    traced.records()
    db = str(traced.path)
    for query, count in (("metadata.app.version=1.2", 1), ("has metadata.k8s.pod.name", 1),
                         ("metadata.k8s.pod.name~p-", 1), ("metadata.o.z=1", 1), ("metadata.o.z=2", 0),
                         ("metadata.app=1.2", 0), ("has metadata.app.version.x", 0)):
        code, out, err = _run(capsys, "--db", db, "query", query, "--json")
        assert (code, len(json.loads(out))) == (0, count), (query, err)


def test_info_reports_the_store_given_with_db(tmp_path: Path) -> None:
    """``autotrace --db PATH info`` took ``--db`` (its help: "local store path, as before the command")
    and then reported the default store: it now reports what ``autotrace --db PATH run`` would use."""
    env = isolated_env(tmp_path)
    db = tmp_path / "given.db"
    for argv in (["--db", str(db), "info", "--no-import"], ["info", "--no-import", "--db", str(db)]):
        done = subprocess.run([sys.executable, "-m", "autotrace", *argv, "--json"], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        found = json.loads(done.stdout)
        assert found["export"]["local_store"] == str(db), done.stderr
        assert {"setting": "local_store_path", "value": str(db), "variable": "--db"} in found["settings"]
    done = subprocess.run([sys.executable, "-m", "autotrace", "info", "--no-import", "--json"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert json.loads(done.stdout)["export"]["local_store"] == str(tmp_path / "home" / "traces.db")


def test_check_names_the_store_given_with_db(tmp_path: Path) -> None:
    """``check`` without Langfuse says where traces go meanwhile: the default store, not ``--db``'s."""
    env = isolated_env(tmp_path)
    done = subprocess.run([sys.executable, "-m", "autotrace", "--db", str(tmp_path / "given.db"), "check"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"autotrace: nothing to check: no Langfuse is configured; set LANGFUSE_HOST and the keys "
                           f"(traces go to the local store at {tmp_path / 'given.db'} meanwhile)\n")


def test_an_empty_tenant_is_refused_not_read_as_every_tenant(traced: Traced,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """``traces --tenant "$TENANT"`` with the variable unset listed every tenant's traces."""
    with autotrace.tenant("acme"), autotrace.start_span("s"):
        pass
    traced.records()
    code, out, err = _run(capsys, "--db", str(traced.path), "traces", "--tenant", "", "--json")
    assert code == 2 and json.loads(out)["error"]["kind"] == "usage"
    assert err.splitlines()[-1] == "autotrace traces: error: argument --tenant: must not be empty"


def test_compare_rows_line_up_with_a_wide_score_name(traced: Traced, capsys: pytest.CaptureFixture[str]) -> None:
    """A score named in CJK (``正確さ``, 3 characters, 6 columns) shifted its row's numbers 3 columns right."""
    for version, value in ((1, 0.9), (1, 0.8), (2, 0.7), (2, 0.6)):
        with autotrace.start_generation("answer", model="m", prompt={"name": "p", "version": version}) as gen:
            gen.update(usage={"total": 10})
            gen.score("正確さ", value)
            gen.score("ok", value)
    traced.records()
    code, out, err = _run(capsys, "--db", str(traced.path), "compare", "--prompt", "p", "1", "2")
    assert (code, err) == (0, "")
    rows = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert rows["score:ok"].split()[1:] == rows["score:正確さ"].split()[1:] == ["0.85", "0.65", "-", "-", "0.333333"]
    assert _columns(rows["score:正確さ"]) == _columns(rows["score:ok"]) == _columns(rows["tokens"])  # in line
