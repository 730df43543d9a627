"""docs/integrations.md, "In another package": its pyproject entry point and module, built and
installed with pip as real distributions, load, patch, record and show in ``autotrace info``."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "integrations.md").read_text(encoding="utf-8")
AUTOTRACE = Path(sys.executable).with_name("autotrace")

LIBRARY = '''
from dataclasses import dataclass


@dataclass
class Reply:
    text: str
    input_tokens: int
    output_tokens: int


class Client:
    def complete(self, prompt, *, model="acme-1"):
        if prompt == "boom":
            raise ValueError("refused")
        return Reply(prompt.upper(), len(prompt), 2)
'''

APP = '''
import json, sys
import autotrace
from opentelemetry import trace

autotrace.install(local_store="on", local_store_path=sys.argv[1], export_interval=0.05)
import acme_llm

client = acme_llm.Client()
with autotrace.tenant("acme"):
    assert client.complete("hello", model="acme-2").text == "HELLO"
    try:
        client.complete("boom")
    except ValueError:
        pass
    with trace.get_tracer("other").start_as_current_span("other.chat", attributes={"gen_ai.operation.name": "chat"}):
        client.complete("owned")  # another instrumentor's generation owns this call
autotrace.flush(10.0)
fields = ("type", "name", "model", "input", "output", "usage", "level", "status_message", "tenant")
records = sorted(autotrace.local_store().observations(), key=lambda r: r["start_ns"])
print(json.dumps([{k: r[k] for k in fields} for r in records]))
'''


def _block(language: str, containing: str) -> str:
    (block,) = [b for b in re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S) if containing in b]
    return block


def _dist(where: Path, name: str, version: str, module: str, code: str, extra: str = "") -> Path:
    where.mkdir()
    (where / f"{module}.py").write_text(code)
    (where / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n[tool.setuptools]\npy-modules = ["{module}"]\n{extra}')
    return where


def test_documented_third_party_integration_loads_patches_records_and_is_listed(tmp_path: Path) -> None:
    library = _dist(tmp_path / "lib", "acme-llm", "1.2.0", "acme_llm", LIBRARY)
    plugin = _dist(tmp_path / "plugin", "acme-llm-autotrace", "0.1.0", "acme_llm_autotrace",
                   _block("python", "class AcmeLLMIntegration"), _block("toml", "autotrace.integrations"))
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "--no-index",
                    "--target", str(site), str(library), str(plugin)], check=True, capture_output=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRACE_", "LANGFUSE_", "OTEL_"))}
    env.update(PYTHONPATH=str(site), HOME=str(tmp_path))
    (tmp_path / "app.py").write_text(APP)

    ran = subprocess.run([sys.executable, str(tmp_path / "app.py"), str(tmp_path / "t.db")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == [
        {"type": "generation", "name": "acme_llm.complete", "model": "acme-2", "input": "hello", "output": "HELLO",
         "usage": {"input": 5, "output": 2, "total": 7}, "level": "DEFAULT", "status_message": None,
         "tenant": "acme"},
        {"type": "generation", "name": "acme_llm.complete", "model": None, "input": "boom", "output": None,
         "usage": None, "level": "ERROR", "status_message": "ValueError: refused", "tenant": "acme"},
        {"type": "generation", "name": "other.chat", "model": None, "input": None, "output": None, "usage": None,
         "level": "DEFAULT", "status_message": None, "tenant": "acme"},
    ]

    info = subprocess.run([str(AUTOTRACE), "info"], env={**env, "AUTOTRACE_INTEGRATIONS": "acme_llm"},
                          capture_output=True, text=True, timeout=60)
    (shown,) = re.findall(r"^  acme_llm .*$", DOC, flags=re.M)  # the line the doc shows
    assert shown in info.stdout.splitlines(), info.stdout


def _resolves(name: str) -> bool:
    """Whether ``name`` (``a.b.c``, ``a/b.c``) is a module or attribute of autotrace or of a library."""
    parts = name.replace("/", ".").split(".")
    for root in ("autotrace.", "autotrace.integrations.", "autotrace.integrations.base.", ""):
        dotted = (root + ".".join(parts)).split(".")
        for cut in range(len(dotted), 0, -1):
            try:
                target: object = importlib.import_module(".".join(dotted[:cut]))
            except ImportError:
                continue
            try:
                for attribute in dotted[cut:]:
                    target = getattr(target, attribute)
            except AttributeError:
                break
            return True
    return False


def test_every_api_the_integration_doc_names_exists() -> None:
    """Each ``module.attribute`` of autotrace (or wrapt) the doc names in backticks is importable."""
    names = set(re.findall(r"`((?:autotrace|export|integrations|ownership|documents|recorder|observation|Patcher|"
                           r"wrapt)[a-z_/]*(?:\.[A-Za-z_]+)+)(?:\([^`]*\))?`", DOC))
    assert [name for name in sorted(names) if not _resolves(name)] == []
    assert {"export/local_sink.span_record", "ownership.FOREIGN", "observation.TYPE_FIELDS"} <= names
