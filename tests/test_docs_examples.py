"""What README.md and docs/integrations.md promise: their snippets, the example, the CLI commands
they show, the configuration table and the integration contract, run as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import autotrace
from autotrace import cli
from autotrace.config import _ENV, Settings
from autotrace.query import compile_query
from tests.helpers import Traced, shape

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
INTEGRATIONS_DOC = (ROOT / "docs" / "integrations.md").read_text(encoding="utf-8")


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a Markdown text, in order."""
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert cli.main(list(argv)) == 0
    return capsys.readouterr().out


def search(question: str) -> list[dict[str, Any]]:
    return [{"id": "kb-1", "content": "Orders ship within 24 hours.", "score": 0.92}]


# -- README snippets --------------------------------------------------------------------------------
def test_readme_quick_start_snippet(traced: Traced) -> None:
    """The quick start as written (only ``question`` and ``search`` are left to the reader)."""
    namespace: dict[str, Any] = {"question": "When does order 7 ship?", "search": search}
    exec(python_blocks(README)[0], namespace)
    with autotrace.tenant("acme"):
        namespace["issue_refund"]("order-7")
    records = traced.records()
    assert shape(records) == [("retriever", "knowledge-search", []), ("tool", "issue_refund", [])]
    retrieval = records[0]
    assert (retrieval["tenant"], retrieval["input"], retrieval["top_k"], retrieval["doc_count"]) == (
        "acme", "When does order 7 ship?", 5, 1)
    assert retrieval["output"] == search("")
    assert records[1]["input"] == {"order_id": "order-7"}


def test_readme_tenancy_snippet(traced: Traced) -> None:
    hits = search("")
    with autotrace.tenant("acme"):
        exec(python_blocks(README)[1], {"autotrace": autotrace, "question": "q", "hits": hits})
    (record,) = traced.records()
    assert (record["type"], record["tenant"], record["doc_count"], record["output"]) == ("retriever", "acme", 1, hits)


def test_quickstart_example_and_the_commands_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``python examples/quickstart.py``, then ``autotrace traces`` / ``show <prefix>`` / ``query``."""
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True,
                          text=True, timeout=60, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    trace_id = done.stdout.split()[-1]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id), done.stdout
    assert trace_id in run_cli(capsys, "traces")
    records = json.loads(run_cli(capsys, "show", trace_id[:6], "--json"))
    assert shape(records) == [("agent", "support-turn", [("retriever", "knowledge-search", []),
                                                         ("tool", "issue_refund", [])])]
    by_name = {r["name"]: r for r in records}
    assert {r["tenant"] for r in records} == {"acme"}
    assert (by_name["knowledge-search"]["top_k"], by_name["knowledge-search"]["doc_count"]) == (5, 1)
    assert by_name["support-turn"]["output"] == "It ships today."
    assert "[TOOL] issue_refund" in run_cli(capsys, "show", trace_id[:6])
    found = json.loads(run_cli(capsys, "query", "type=tool and tenant=acme", "--json"))
    assert [r["name"] for r in found] == ["issue_refund"]


def test_query_text_example(traced: Traced) -> None:
    """``metadata.build=42`` does not match "0042" (a text field equals its text)."""
    with autotrace.tenant("acme"), autotrace.start_span("build", metadata={"build": "0042"}):
        pass
    (record,) = traced.records()
    assert not compile_query("metadata.build=42").matches(record)
    assert compile_query("metadata.build=0042").matches(record)


def test_prompt_versions_are_integers(traced: Traced) -> None:
    with autotrace.tenant("acme"):
        for version in (3, "4", "1.10", "latest"):
            with autotrace.start_generation(f"v{version}", prompt={"name": "answer", "version": version}):
                pass
    versions = {r["name"]: r["prompt"]["version"] for r in traced.records()}
    assert versions == {"v3": 3, "v4": 4, "v1.10": None, "vlatest": None}


def test_tenantless_spans_local_only_kept_with_langfuse_dropped(rx: Any, tmp_path: Path) -> None:
    """Routing as the README says: with no Langfuse the local store keeps every span; with
    Langfuse, a tenantless span is dropped (counted), not kept in the local store either."""
    autotrace.install(local_store_path=tmp_path / "a.db", integrations=(), export_interval=0.05)
    with autotrace.start_span("no-tenant"):
        pass
    assert autotrace.flush(5.0)
    assert [r["name"] for r in autotrace.local_store().observations()] == ["no-tenant"]
    autotrace.install(langfuse_host=rx.endpoint, local_store="on", local_store_path=tmp_path / "b.db",
                      credentials={"acme": {"public_key": "pk-lf-a", "secret_key": "sk-lf-a"}},
                      integrations=(), export_interval=0.05)
    autotrace.reset_stats()
    with autotrace.start_span("no-tenant"):
        pass
    assert autotrace.flush(5.0)
    assert autotrace.local_store().observations() == []
    assert autotrace.stats()["spans_dropped.no_tenant"] == 1


# -- the configuration table ------------------------------------------------------------------------
def _config_rows() -> list[tuple[set[str], set[str]]]:
    """(settings, environment variables) named in each row of the README's configuration table."""
    table = README.split("| setting | environment | default |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:
        cells = line.split("|")
        settings = set(re.findall(r"`([a-z_]+)`", cells[1]))
        variables = set(re.findall(r"`((?:AUTOTRACE|LANGFUSE|OTEL)_[A-Z_]+)", cells[2]))
        rows.append((settings, variables))
    return rows


def test_configuration_table_names_every_setting_and_its_variables() -> None:
    rows = _config_rows()
    documented = set().union(*(settings for settings, _ in rows))
    assert documented >= {f for f in Settings.__dataclass_fields__}, "a setting missing from the README"
    for settings, variables in rows:
        if not settings:  # sampling: read by the tracer provider, not by autotrace's settings
            assert variables == {"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"}
            continue
        read = {v for name in settings if name in _ENV for v in _ENV[name][0]}
        extra = {"OTEL_SDK_DISABLED"} if "enabled" in settings else set()
        assert variables == read | extra, settings


# -- docs/integrations.md: the integration contract -------------------------------------------------
PLUGIN = '''
from autotrace import recorder
from autotrace.integrations.base import Integration
from autotrace.observation import ObservationType


def _wrap(wrapped, instance, args, kwargs):
    with recorder.start(ObservationType.TOOL, "docs_target.lookup") as obs:
        result = wrapped(*args, **kwargs)
        obs.update(result=result)
    return result


class LookupIntegration(Integration):
    name = "docs_lookup"
    distribution = "docs-plugin"
    module = MODULE
    supported = ">=0.1"

    def _instrument(self):
        self.patcher.wrap("docs_target", "lookup", _wrap)


INTEGRATION = LookupIntegration()
'''


def _plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """An installed distribution declaring one integration through the documented entry point."""
    (tmp_path / "docs_plugin.py").write_text(PLUGIN.replace("MODULE", repr(module)))
    (tmp_path / "docs_target.py").write_text("def lookup(key):\n    return key.upper()\n")
    info = tmp_path / "docs_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: docs-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[autotrace.integrations]\ndocs_lookup = docs_plugin:INTEGRATION\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("docs_plugin", "docs_target"):
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_contract_snippet_declares_the_module_to_wait_for() -> None:
    contract = python_blocks(INTEGRATIONS_DOC)[0]
    assert re.search(r'^\s+module = "openai"', contract, flags=re.M)


@pytest.mark.parametrize(("module", "traced_call"), [("docs_target", True), ("", False)])
def test_third_party_integration_patches_on_import_of_its_module(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, traced_call: bool) -> None:
    """Discovered through the entry-point group and patched when the application imports ``module``;
    without ``module`` autotrace waits for a module named like the entry point, so nothing is traced."""
    _plugin(tmp_path, monkeypatch, module)
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", export_interval=0.05,
                      integrations=("docs_lookup",))
    import docs_target  # the application's first import is what triggers patching

    with autotrace.tenant("acme"):
        assert docs_target.lookup("kb") == "KB"
    assert autotrace.flush(5.0)
    names = [r["name"] for r in autotrace.local_store().observations()]
    assert names == (["docs_target.lookup"] if traced_call else [])
