"""``--db=~/traces.db``: the shell expands no ``~`` after ``=``, so the CLI must, as it does for
``AUTOTRACE_LOCAL_STORE_PATH``; it looked for a folder named ``~`` and found no store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autotrace import cli
from autotrace.export.local_store import LocalStore


def test_a_db_option_under_the_home_folder_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)  # no "~" folder here either
    store = LocalStore(tmp_path / "traces.db")
    store.close()
    assert cli.main(["--db=~/traces.db", "traces", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
