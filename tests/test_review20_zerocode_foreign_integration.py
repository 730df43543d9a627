"""Review 20: an integration another package registers under ``autotrace.integrations`` that is no
``Integration`` (a plain object; a class without ``module``/``distribution``) crashed ``autotrace
info`` with a traceback, the command meant to diagnose it; and ``install()``, which counted it as
failed, still listed it as installed and raised on it (an internal error) at ``uninstall()``."""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path

import pytest

import autotrace
from autotrace.diagnostics import FAILED, report

_MODULE = textwrap.dedent("""
    class NoModule:
        name = "nomodule"

        def check(self):
            return None

    PLAIN = object()
""")


@pytest.fixture
def foreign(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution on the path registering two malformed integrations."""
    site = tmp_path / "site"
    (site / "foreign_tracing-1.0.dist-info").mkdir(parents=True)
    (site / "foreign_tracing-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: foreign-tracing\nVersion: 1.0\n")
    (site / "foreign_tracing-1.0.dist-info" / "entry_points.txt").write_text(
        "[autotrace.integrations]\nnomodule = foreign_tracing:NoModule\nplain = foreign_tracing:PLAIN\n")
    (site / "foreign_tracing.py").write_text(_MODULE)
    monkeypatch.syspath_prepend(str(site))


@pytest.mark.usefixtures("foreign")
def test_info_reports_a_malformed_foreign_integration_as_failed(tmp_path: Path) -> None:
    found = report({"AUTOTRACE_LOCAL_STORE_PATH": str(tmp_path / "t.db")}, try_patching=False)
    statuses = {i["name"]: (i["status"], i["detail"]) for i in found["integrations"]}
    assert statuses["nomodule"] == (FAILED, "cannot be loaded (AttributeError: 'NoModule' object has no attribute "
                                            "'distribution')")
    assert statuses["plain"] == (FAILED, "cannot be loaded (AttributeError: 'object' object has no attribute "
                                         "'distribution')")


@pytest.mark.usefixtures("foreign")
def test_install_keeps_no_foreign_integration_that_failed(tmp_path: Path) -> None:
    autotrace.install(local_store_path=tmp_path / "t.db", integrations=("nomodule", "plain"))
    assert importlib.import_module("autotrace.install").installed_integrations() == []
    autotrace.uninstall()
    assert {k: v for k, v in autotrace.stats().items() if "nomodule" in k or "plain" in k or "internal" in k} == {
        "integration_failed.nomodule": 1, "integration_failed.plain": 1}
