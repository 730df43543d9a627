"""What README.md and docs/integrations.md promise: their snippets, the example, the CLI commands
they show, the configuration table and the integration contract, run as written."""

from __future__ import annotations

import asyncio
import base64
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
from autotrace.config import _ENV, Settings, load_settings
from autotrace.install import installed_integrations
from autotrace.query import compile_query
from tests.helpers import Traced, shape

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
INTEGRATIONS_DOC = (ROOT / "docs" / "integrations.md").read_text(encoding="utf-8")


def python_blocks(text: str) -> list[str]:
    """The ```python blocks of a Markdown text, in order."""
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def python_block(text: str, containing: str) -> str:
    """The one ```python block of ``text`` that contains ``containing``."""
    (block,) = [block for block in python_blocks(text) if containing in block]
    return block


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
        exec(python_block(README, "RAG service"), {"autotrace": autotrace, "question": "q", "hits": hits})
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
    # the options the README names: traces --tenant/--limit, show --no-io, query --limit, --db PATH
    assert [t["trace_id"] for t in json.loads(run_cli(capsys, "traces", "--tenant", "acme", "--limit", "1",
                                                      "--json"))] == [trace_id]
    assert json.loads(run_cli(capsys, "traces", "--tenant", "globex", "--json")) == []
    assert "in:" in run_cli(capsys, "show", trace_id[:6]) and "in:" not in run_cli(capsys, "show", trace_id[:6],
                                                                                    "--no-io")
    assert len(json.loads(run_cli(capsys, "query", "tenant=acme", "--limit", "2", "--json"))) == 2
    assert json.loads(run_cli(capsys, "query", "type=nothing", "--json")) == []  # no match: exit 0
    store = Path(os.environ["AUTOTRACE_HOME"]) / "traces.db"
    moved = tmp_path / "elsewhere.db"
    store.rename(moved)
    assert [r["name"] for r in json.loads(run_cli(capsys, "--db", str(moved), "query", "type=tool", "--json"))] == [
        "issue_refund"]


def test_readme_opens_with_the_two_make_commands() -> None:
    """The README's first lines give exactly ``make demo`` and ``make test``, both Makefile targets."""
    assert README.startswith("# autotrace\n\n```\n")
    first = README.split("```", 2)[1]
    assert [line.split("#", 1)[0].strip() for line in first.strip().splitlines()] == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, flags=re.M) and re.search(r"^test:", makefile, flags=re.M)


def test_readme_trace_attributes_snippet(traced: Traced) -> None:
    """Trace-level fields set for a block reach every span started inside, as the README shows."""
    def agent(question: str) -> str:
        with autotrace.start_agent("turn", input=question), autotrace.start_span("step"):
            return "answer"

    with autotrace.tenant("acme"):
        exec(python_block(README, "trace_attributes"), {"autotrace": autotrace, "agent": agent, "question": "q"})
    records = traced.records()
    assert [(r["name"], r["trace_name"], r["user_id"], r["session_id"], r["tags"]) for r in records] == [
        ("turn", "support-turn", "u-42", "chat-7", ["beta"]), ("step", "support-turn", "u-42", "chat-7", ["beta"])]
    assert all(compile_query("session_id=chat-7").matches(r) for r in records)


def test_query_operators_the_readme_names() -> None:
    record = {"type": "generation", "level": "DEFAULT", "name": "error-404", "model": None,
              "usage": {"total": 2500}, "prompt": {"version": 3}}
    expected = {"usage.total=2500": True, "usage.total==2.5e3": True, "usage.total!=2500": False,
                "usage.total<2500": False, "usage.total<=2500": True, "usage.total>2000": True,
                "usage.total>=2501": False, "name~404": True, "name!~404": False, "has prompt.version": True,
                "has model": False, "model=null": True, "type=GENERATION": True, "level=default": True}
    assert {query: compile_query(query).matches(record) for query in expected} == expected


def test_query_text_example(traced: Traced) -> None:
    """``metadata.build=42`` does not match "0042" (a text field equals its text)."""
    with autotrace.tenant("acme"), autotrace.start_span("build", metadata={"build": "0042"}):
        pass
    (record,) = traced.records()
    assert not compile_query("metadata.build=42").matches(record)
    assert compile_query("metadata.build=0042").matches(record)


@pytest.mark.integrations("openai")
def test_set_prices_as_the_readme_writes_it(traced: Traced, client: Any) -> None:
    """``set_prices({"my-model": (input, cached_input, output)})``, USD per million tokens."""
    from autotrace.integrations.openai import set_prices

    set_prices({"docs-model": (2.0, 1.0, 8.0)})
    with autotrace.tenant("acme"):
        client.chat.completions.create(model="docs-model", messages=[{"role": "user", "content": "hi"}])
    (record,) = traced.records()
    assert (record["model"], record["usage"]) == ("docs-model", {"input": 7, "output": 5, "total": 12,
                                                                 "input_cached_tokens": 0,
                                                                 "output_reasoning_tokens": 0})
    assert record["cost"] == {"input": pytest.approx(7 * 2.0 / 1e6), "output": pytest.approx(5 * 8.0 / 1e6),
                              "total": pytest.approx((7 * 2.0 + 5 * 8.0) / 1e6)}


def test_prompt_versions_are_integers(traced: Traced) -> None:
    with autotrace.tenant("acme"):
        for version in (3, "4", "1.10", "latest"):
            with autotrace.start_generation(f"v{version}", prompt={"name": "answer", "version": version}):
                pass
    versions = {r["name"]: r["prompt"]["version"] for r in traced.records()}
    assert versions == {"v3": 3, "v4": 4, "v1.10": None, "vlatest": None}


def _exported(rx: Any, names: list[str]) -> list[tuple[str, Any, str]]:
    """(name, tenant, Basic auth key pair) of the spans ``rx`` received, once ``names`` are all there."""
    assert autotrace.flush(5.0)
    spans = rx.wait_for_spans(len(names))
    return sorted((s.name, s.attributes.get("autotrace.tenant"),
                   base64.b64decode(s.headers["authorization"].split()[1]).decode()) for s in spans)


def _two_spans() -> None:
    with autotrace.start_span("no-tenant"):
        pass
    with autotrace.tenant("acme"), autotrace.start_span("acme"):
        pass


def test_readme_one_langfuse_project_snippet_and_its_variables(rx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One project: spans with no tenant, or a tenant with no keys, go to the default key pair,
    by keywords as the snippet writes them or by the variables the README names."""
    block = python_block(README, "one project for everything")
    exec(block.replace("https://langfuse.example.com", rx.endpoint), {"autotrace": autotrace})
    _two_spans()
    expected = [("acme", "acme", "pk-lf-...:sk-lf-..."), ("no-tenant", None, "pk-lf-...:sk-lf-...")]
    assert _exported(rx, ["acme", "no-tenant"]) == expected
    assert autotrace.local_store() is None  # with Langfuse, the local store is off by default
    rx.clear()
    autotrace.uninstall()
    for name, value in (("LANGFUSE_HOST", rx.endpoint), ("LANGFUSE_PUBLIC_KEY", "pk-lf-..."),
                        ("LANGFUSE_SECRET_KEY", "sk-lf-..."), ("AUTOTRACE_UNKNOWN_TENANT", "default")):
        monkeypatch.setenv(name, value)
    autotrace.install(integrations=())
    _two_spans()
    assert _exported(rx, ["acme", "no-tenant"]) == expected


def test_readme_project_per_customer_snippet_drops_the_rest(rx: Any, tmp_path: Path) -> None:
    """Per-tenant keys: acme's span goes with acme's keys; without ``unknown_tenant="default"`` the
    tenantless span is dropped and counted as the README says; ``local_store="on"`` keeps a copy."""
    block = python_block(README, "each tenant's spans go to its own project")
    call = block.replace("https://langfuse.example.com", rx.endpoint).replace(
        "credentials=", f"local_store='on', local_store_path={str(tmp_path / 't.db')!r}, credentials=")
    exec(call, {"autotrace": autotrace})
    autotrace.reset_stats()
    _two_spans()
    with autotrace.tenant("globex"), autotrace.start_span("globex"):
        pass
    assert _exported(rx, ["acme"]) == [("acme", "acme", "pk-lf-...:sk-lf-...")]
    stats = autotrace.stats()
    assert (stats["spans_dropped.no_tenant"], stats["spans_dropped.unknown_tenant"]) == (1, 1)
    assert [r["name"] for r in autotrace.local_store().observations()] == ["acme"]


def test_callable_credentials_as_the_readme_describes(rx: Any) -> None:
    """``fn(tenant_id)`` returning a mapping of keys, or ``None`` for a tenant it does not know."""
    assert "a callable `fn(tenant_id)` returning such a mapping of keys or `None`" in " ".join(README.split())
    def lookup(tenant_id: str) -> dict[str, str] | None:
        return {"public_key": "pk-lf-a", "secret_key": "sk-lf-a"} if tenant_id == "acme" else None

    autotrace.install(langfuse_host=rx.endpoint, credentials=lookup, integrations=(), export_interval=0.05)
    autotrace.reset_stats()
    with autotrace.tenant("globex"), autotrace.start_span("globex"):
        pass
    with autotrace.tenant("acme"), autotrace.start_span("acme"):
        pass
    assert _exported(rx, ["acme"]) == [("acme", "acme", "pk-lf-a:sk-lf-a")]
    assert autotrace.stats()["spans_dropped.unknown_tenant"] == 1


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


# -- what the README says of redaction and errors -------------------------------------------------
def test_redaction_as_the_readme_lists_it(tmp_path: Path) -> None:
    """Key assignments and Anthropic keys are API keys; structural attributes reach no hook; every
    span's resource, autotrace's own included, does (``resource``); a hook's ``None`` leaves the
    value out (an attribute dropped, a name empty)."""
    seen: set[tuple[str, str]] = set()

    def hook(key: str, value: Any, span_type: str) -> Any:
        seen.add((key, span_type))
        return None if key in ("langfuse.observation.metadata.drop", "span.name") else value

    autotrace.install(local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05, redact=[hook])
    with autotrace.tenant("acme"), autotrace.start_generation("answer", model="gpt-4o", metadata={
            "config": "password=hunter2xyz", "header": "api_key: abcdef123456", "drop": "x",
            "key": "sk-ant-api03-abcdefghijklmnop"}) as generation:
        generation.update(usage={"input": 1, "output": 2, "total": 3})
    assert autotrace.flush(5.0)
    store = autotrace.local_store()
    assert store is not None
    (record,) = store.observations()
    assert record["name"] == ""
    assert (record["model"], record["usage"]) == ("gpt-4o", {"input": 1, "output": 2, "total": 3})
    assert record["metadata"] == {"config": "password=<API_KEY>", "header": "api_key: <API_KEY>",
                                  "key": "<API_KEY>"}
    structural = {"langfuse.observation.type", "langfuse.observation.model.name", "autotrace.tenant",
                  "langfuse.observation.usage_details", "gen_ai.request.model"}
    assert not {key for key, _ in seen} & structural
    assert {("langfuse.observation.metadata.config", "generation"), ("span.name", "generation"),
            ("service.name", "resource")} <= seen


def test_interrupted_observation_is_a_warning_an_exception_an_error(traced: Traced) -> None:
    @autotrace.observe
    async def slow() -> None:
        await asyncio.sleep(10)

    @autotrace.observe
    def boom() -> None:
        raise KeyError("k")

    async def cancel() -> None:
        task = asyncio.create_task(slow())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with autotrace.tenant("acme"):
        asyncio.run(cancel())
        with pytest.raises(KeyError):
            boom()
    levels = {r["name"]: (r["level"], r["error"]) for r in traced.records()}
    assert levels == {"test_interrupted_observation_is_a_warning_an_exception_an_error.<locals>.slow": (
        "WARNING", False), "test_interrupted_observation_is_a_warning_an_exception_an_error.<locals>.boom": (
        "ERROR", True)}


# -- counters the docs name -------------------------------------------------------------------------
SOURCE = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "src" / "autotrace").rglob("*.py"))
_COUNTER = re.compile(r"`((?:spans|scores)_(?:dropped|exported)(?:\.[a-z_:<>]+)?"
                      r"|[a-z]+(?:_[a-z]+)*_(?:dropped|truncated|invalid|mismatch|busy|skipped|failed|errors)"
                      r"(?:\.[a-z_<>]+)?)`")


def _documented_counters() -> set[str]:
    """Counter names in README.md and docs/integrations.md; ``.name`` in the README's ``stats()``
    paragraph is short for ``spans_dropped.name``."""
    names = set(_COUNTER.findall(README + INTEGRATIONS_DOC))
    paragraph = README.split("`autotrace.stats()` returns every counter", 1)[1].split("\n\n", 1)[0]
    names.update(f"spans_dropped{short}" for short in re.findall(r"`(\.[a-z_]+)`", paragraph))
    return names


def test_counters_named_in_the_docs_exist() -> None:
    """Every counter the docs name is one the code counts (a name with ``<key>``, or ``.other``,
    is of a family counted per key)."""
    names = _documented_counters()
    assert {"spans_dropped.shutdown", "spans_dropped.tenant_cap", "tenant_mismatch", "attribute_items_dropped",
            "scores_dropped.redacted", "integration_failed.<name>", "spans_exported.other"} <= names
    missing = []
    for name in sorted(names):
        if "<" in name or name.endswith(".other"):
            family = name.split(".", 1)[0]
            found = f'"{family}"' in SOURCE or f'f"{family}.{{' in SOURCE
        else:
            found = f'"{name}"' in SOURCE
        if not found:
            missing.append(name)
    assert missing == []


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


def test_configuration_table_gives_the_numeric_defaults_and_limits() -> None:
    """Each row of numeric settings lists their defaults in order; the limits it names hold."""
    table = README.split("| setting | environment | default |", 1)[1].split("\n\n", 1)[0]
    defaults = Settings()
    checked = set()
    for line in table.splitlines()[2:]:
        cells = line.split("|")
        names = list(dict.fromkeys(re.findall(r"`([a-z_]+)`", cells[1])))
        values = [getattr(defaults, name, None) for name in names]
        if not names or not all(type(v) in (int, float) for v in values):
            continue
        assert [float(n) for n in re.findall(r"\d+", cells[3])[:len(names)]] == values, names
        checked.update(names)
    assert len(checked) == 14
    for bad, limit in (({"export_workers": 65}, "at most 64"), ({"max_value_bytes": 255}, ">= 256"),
                       ({"max_export_bytes": 1023}, ">= 1024"),
                       ({"queue_size": 10, "max_export_batch": 11}, "must not exceed queue_size")):
        with pytest.raises(autotrace.ConfigError, match=limit):
            load_settings(bad, env={})


def test_cut_values_end_with_the_truncation_mark(traced: Traced) -> None:
    with autotrace.tenant("acme"), autotrace.start_span("long", input="x" * 70_000):
        pass
    (record,) = traced.records()
    assert record["input"].endswith("…[truncated]") and len(record["input"].encode()) <= 65_536
    assert autotrace.stats()["attributes_truncated"] == 1


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


def _plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str = PLUGIN) -> None:
    """An installed distribution declaring one integration through the documented entry point."""
    (tmp_path / "docs_plugin.py").write_text(source.replace("MODULE", repr(module)))
    (tmp_path / "docs_target.py").write_text("def lookup(key):\n    return key.upper()\n")
    info = tmp_path / "docs_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: docs-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[autotrace.integrations]\ndocs_lookup = docs_plugin:INTEGRATION\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("docs_plugin", "docs_target"):
        monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.mark.integrations("openai")
def test_integration_test_snippet_runs_as_written(traced: Traced, fake: Any) -> None:
    """The example test of docs/integrations.md, with the fixtures it names (conftest.py's)."""
    namespace: dict[str, Any] = {}
    exec(python_block(INTEGRATIONS_DOC, "def test_chat"), namespace)
    assert namespace["test_chat"].pytestmark[0].args == ("openai",)
    namespace["test_chat"](traced, fake)


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


def test_third_party_integration_failing_partway_is_undone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``_instrument`` that raises after patching: the patch is removed, the library runs
    untraced, ``integration_failed.<name>`` is counted."""
    failing = PLUGIN.replace('self.patcher.wrap("docs_target", "lookup", _wrap)',
                             'self.patcher.wrap("docs_target", "lookup", _wrap)\n        raise RuntimeError("partway")')
    _plugin(tmp_path, monkeypatch, "docs_target", failing)
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", export_interval=0.05,
                      integrations=("docs_lookup",))
    import docs_target

    with autotrace.tenant("acme"):
        assert docs_target.lookup("kb") == "KB"
    assert autotrace.flush(5.0)
    assert type(docs_target.lookup).__name__ == "function"  # not a wrapt wrapper any more
    assert autotrace.local_store().observations() == []
    assert autotrace.stats()["integration_failed.docs_lookup"] == 1
    assert "docs_lookup" not in installed_integrations()
