"""The CLI as a demanding user meets it: ``traces --tenant`` given bytes that are not
UTF-8, ``compare`` naming what it could have compared, and ``--db`` after the command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from autotrace import cli
from tests.test_cli_broken_output_and_replay_args import NOW, _store
from tests.test_cli_broken_output_and_replay_args import _record as _record_of

HEADER = "TRACE                             NAME                      TENANT          DURATION   TOKENS        COST  ERR"


def _record(number: int, name: str, **fields: Any) -> dict[str, Any]:
    """A generation of trace ``number``, started ``number`` ns after ``NOW``."""
    return _record_of(f"{number:016x}", None, name, trace_id=f"{number:032x}", **{
        "type": "generation", "model": "m", "start_ns": NOW + number, "end_ns": NOW + number + 10**6, **fields})


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_tenant_typed_as_bytes_that_are_not_utf8_lists_nothing(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """``traces --tenant $'\\xff'`` (Python reads the byte as a lone surrogate) was a traceback:
    SQLite cannot take the text. It names no stored tenant: an empty listing, exit 0."""
    db = _store(tmp_path / "t.db", [_record(1, "turn")])
    assert _run(capsys, "--db", db, "traces", "--tenant", "\udcff") == (0, HEADER + "\n", "")
    assert _run(capsys, "--db", db, "traces", "--tenant", "acme\udcff", "--json") == (0, "[]\n", "")
    code, out, _ = _run(capsys, "--db", db, "traces", "--tenant", "acme", "--json")
    assert (code, [s["trace_id"] for s in json.loads(out)]) == (0, [f"{1:032x}"])


def test_compare_names_the_stored_versions_or_prompts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped version or prompt said only that nothing was found: it now also says what is stored,
    on the line before the error (which stays the last line, as every command ends)."""
    records = [_record(i + 1, "answer", prompt={"name": "support", "version": version})
               for i, version in enumerate((10, 2, 2, 10))]
    records.append(_record(9, "other", prompt={"name": "intent", "version": 1}))
    records.append(_record(8, "replayed", prompt={"name": "replayed-only", "version": 1}, replay_of="ab" * 16))
    db = _store(tmp_path / "t.db", records)

    code, out, err = _run(capsys, "--db", db, "compare", "--prompt", "support", "2", "3", "--json")
    assert (code, json.loads(out)["error"]["kind"]) == (1, "no_data")
    assert err.splitlines() == ["autotrace compare: stored versions of prompt 'support': 2, 10",
                                f"autotrace compare: no generations of prompt 'support' version 3 in {db}"]
    code, _, err = _run(capsys, "--db", db, "compare", "--prompt", "suport", "2", "10")
    assert code == 1 and err.splitlines() == [
        "autotrace compare: stored prompts: intent, support",  # a replay's prompt is no sample: not named
        f"autotrace compare: no generations of prompt 'suport' version 2 or 10 in {db}"]
    empty = _store(tmp_path / "empty.db", [_record(1, "turn", type="span")])
    code, _, err = _run(capsys, "--db", empty, "compare", "--prompt", "support", "1", "2")
    assert code == 1 and err.splitlines()[0] == "autotrace compare: no stored generation records a prompt"
    assert _run(capsys, "--db", db, "compare", "--prompt", "support", "2", "10")[::2] == (0, "")  # found: no note


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_db_is_taken_before_or_after_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 before: bool) -> None:
    db = _store(tmp_path / "t.db", [_record(1, "turn", type="chain")])
    argv = ["--db", db, "traces", "--json"] if before else ["traces", "--json", "--db", db]
    code, out, err = _run(capsys, *argv)
    assert (code, err) == (0, "")
    assert [t["trace_id"] for t in json.loads(out)] == [f"{1:032x}"]
    code, out, _ = _run(capsys, *(["--db", db, "query", "type=chain", "--json"] if before
                                  else ["query", "type=chain", "--db", db, "--json"]))
    assert code == 0 and [r["name"] for r in json.loads(out)] == ["turn"]
