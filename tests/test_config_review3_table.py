"""The README's configuration table against the code: every setting in it and in ``Settings``, its
variables in the order they are read, "keyword only" for those no variable gives, and each
documented default, spelled as its variable would be, read by the setting's parser as the default."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from autotrace.config import _ENV, Settings

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
#: Defaults the table gives in words (no value a variable could spell).
WORDED = {"public_key": "default project", "secret_key": "default project",
          "credentials": "`AUTOTRACE_TENANT_<ID>_*` variables", "tenant_resolver": "none",
          "grpc_tenant_from_call": "none", "export_ca_file": "none", "export_client_cert": "none",
          "export_client_key": "none", "prices": "none", "integrations": "all discovered",
          "disabled_integrations": "all discovered", "environment": "none", "release": "none",
          "redact": "all detectors", "langfuse_host": "none"}
#: Defaults the table spells as a word of the variable's, not as the value itself.
SPELLED = {"tenant_baggage": "all"}


def _rows() -> list[tuple[list[str], list[str], str, str]]:
    """(settings, variables in order, environment cell, default cell) of each row of the table."""
    table = README.split("| setting | environment | default |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:
        cells = line.strip("|").split(" | ")
        settings = list(dict.fromkeys(re.findall(r"`([a-z_]+)`", cells[0])))
        variables = list(dict.fromkeys(re.findall(r"`((?:AUTOTRACE|LANGFUSE|OTEL)_[A-Z_]+)", cells[1])))
        rows.append((settings, variables, cells[1], cells[2]))
    return rows


ROWS = [row for row in _rows() if row[0]]  # the sampling row names no setting (the tracer provider reads it)
BY_SETTING = {name: row for row in ROWS for name in row[0]}


def test_every_setting_is_in_the_table_once_and_the_table_names_no_other() -> None:
    named = [name for row in ROWS for name in row[0]]
    assert sorted(named) == sorted(f.name for f in dataclasses.fields(Settings))


@pytest.mark.parametrize("row", ROWS, ids=lambda row: ",".join(row[0]))
def test_a_row_lists_its_variables_in_the_order_they_are_read(row: tuple[list[str], list[str], str, str]) -> None:
    settings, variables, cell, _ = row
    read = [v for name in settings if name in _ENV for v in _ENV[name][0]]
    if "enabled" in settings:
        read.append("OTEL_SDK_DISABLED")
    assert variables == read
    assert ("keyword only" in cell) == (not read)


def _spelled(value: Any) -> str:
    """A default as its variable would spell it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, Path):
        return "~/" + str(value.relative_to(Path.home()))
    return str(value)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: ",".join(row[0]))
def test_a_row_gives_each_default_in_order_as_its_parser_reads_it(
        row: tuple[list[str], list[str], str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOTRACE_HOME", raising=False)
    defaults = Settings()
    at = 0
    for name in row[0]:
        value = getattr(defaults, name)
        if name in WORDED:
            assert WORDED[name] in row[3][at:], name
            continue
        spelled = SPELLED.get(name) or _spelled(value)
        found = re.compile(rf"(?<![\w.]){re.escape(spelled)}(?![\w.])").search(row[3], at)
        assert found is not None, (name, spelled, row[3])
        at = found.end()
        if name in _ENV:
            assert _ENV[name][1](spelled) == value, name
