"""Review 19: every counter ``autotrace.stats()`` can return is listed in ``docs/counters.md``, and
every name listed there is still counted. The names are read from the source with ``ast``: the
string (or f-string, as ``<placeholder>`` templates) given to ``count``/``count_keyed``, to the
helpers that forward a name to them (``dropped``, ``closed``, ...), and as the ``where`` of
``guarded_failure`` (``internal_errors.<where>``, listed by its first part). A counting call whose
name is not written at the call must be one of the known forwarders below."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "autotrace"
DOC = ROOT / "docs" / "counters.md"

#: (module, function) -> the positions of its arguments that are counter names.
COUNTING = {("_internal", "count"): (0,), ("_internal", "count_keyed"): (0,), ("_router_drops", "dropped"): (0,),
            ("_router_drops", "closed"): (1,), ("router", "_unknown"): (1,), ("destination", "_count_each"): (1, 2),
            ("tenant_tracker", "_evict_oldest"): (1,)}
#: Those whose ``spans_dropped.<why>`` counts a score as ``scores_dropped.<why>``.
SCORE_AWARE = {("_router_drops", "dropped"), ("_router_drops", "closed"), ("router", "_unknown")}
#: (module, function) -> the position of its ``where`` (counted as ``internal_errors.<where>``).
WHERE = {("_internal", "guarded_failure"): 0, ("recorder", "start_with"): 2, ("_timeouts", "never_raising"): 1,
         ("carried", "enter"): 2, ("class_family", "ClassFamilyPatches"): 6,
         ("workers", "survive"): 0}
#: Functions that pass on a name or ``where`` they were given (reviewed by hand: their callers'
#: literals are collected above).
FORWARDERS = {("_router_drops", "dropped"), ("_router_drops", "closed"),
              ("destination", "_count_each"), ("destination", "_partly_taken"), ("destination", "_given_up"),
              ("router", "_unknown"),
              ("router", "_without_keys"), ("tenant_tracker", "_evict_oldest"), ("tenant_tracker", "_remember"),
              ("propagation", "filter"), ("_timeouts", "never_raising"), ("carried", "enter"),
              ("carried", "forget"), ("recorder", "start_with"), ("class_family", "__init__"),
              ("class_family", "finished"), ("class_family", "imported"), ("class_family", "wrap"),
              ("langchain_embeddings", "start"), ("langchain_stores", "start"), ("_predict", "wrap"),
              ("_rerank", "wrap"), ("_rerank", "awaited"), ("workers", "survive")}
#: Class attributes and parameter defaults whose string value is a ``where`` (``failure =
#: "langchain.embeddings"``); attributes whose value is a counter name (``self.counter =
#: f"propagation_invalid_{header}"``).
WHERE_FIELDS, COUNTER_FIELDS = {"failure", "where"}, {"counter"}
_DROP_CONSTANT = re.compile(r"(spans|scores)_dropped\.[a-z_]+")
_INTERNAL = "internal_errors.<where>"


def _template(node: ast.expr) -> list[str] | None:
    """The counter names ``node`` gives: a string, an f-string as a ``<placeholder>`` template, both
    sides of a conditional; None when not written there."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            else:
                expr = value.value  # type: ignore[attr-defined]
                name = expr.attr if isinstance(expr, ast.Attribute) else getattr(expr, "id", "value")
                parts.append(f"<{name}>")
        return ["".join(parts)]
    if isinstance(node, ast.IfExp):
        body, orelse = _template(node.body), _template(node.orelse)
        return body + orelse if body is not None and orelse is not None else None
    return None


class _Module(ast.NodeVisitor):
    """One module's counter names, ``where`` templates, and counting calls whose name is not literal."""

    def __init__(self, path: Path, found: _Found) -> None:
        self.name, self.found = path.stem, found
        self.imported: dict[str, tuple[str, str]] = {}  # local name -> (module, original name)
        self.modules: dict[str, str] = {}  # local name of an imported module -> its last part
        self.functions: list[str] = []
        self.direct: set[int] = set()  # the name arguments of ``count`` and ``count_keyed``
        self.classes: list[ast.ClassDef] = []

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        source = (node.module or "").rsplit(".", 1)[-1]
        for alias in node.names:
            local = alias.asname or alias.name
            if node.module is None:
                self.modules[local] = alias.name  # ``from .. import carried``
            else:
                self.imported[local] = (source, alias.name)

    def _resolve(self, func: ast.expr) -> tuple[str, str] | None:
        if isinstance(func, ast.Name):
            return self.imported.get(func.id, (self.name, func.id))
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner = func.value.id
            if owner in ("self", "cls"):
                return (self.name, func.attr)
            if owner in self.modules:
                return (self.modules[owner], func.attr)
            if owner in self.imported:  # ``from ..integrations import carried``
                return (self.imported[owner][1], func.attr)
        if (isinstance(func, ast.Attribute) and func.attr == "__init__" and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name) and func.value.func.id == "super" and self.classes):
            for base in self.classes[-1].bases:
                resolved = self._resolve(base) if isinstance(base, ast.Name) else None
                if resolved is not None:
                    return resolved
        return None

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for arg, default in zip(reversed(node.args.args + node.args.kwonlyargs),
                                reversed(node.args.defaults + [d for d in node.args.kw_defaults if d]), strict=False):
            if arg.arg in WHERE_FIELDS and default is not None:
                self.found.where(_template(default))
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for statement in node.body:
            if isinstance(statement, ast.Assign) and any(getattr(t, "id", None) in WHERE_FIELDS
                                                         for t in statement.targets):
                self.found.where(_template(statement.value))
        self.classes.append(node)
        self.generic_visit(node)
        self.classes.pop()

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            field = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
            if field in COUNTER_FIELDS:
                self.found.names.update(_template(node.value) or ())
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        """A drop reason kept in a name (``FAILED``) or a table reaches ``dropped`` through a variable."""
        if isinstance(node.value, str) and _DROP_CONSTANT.fullmatch(node.value):
            self.found.names.add(node.value)
            if id(node) not in self.direct:
                self.found.score_aware.add(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        callee = self._resolve(node.func)
        places = COUNTING.get(callee, ()) if callee else ()
        where = WHERE.get(callee) if callee else None
        for position in places:
            if position < len(node.args):
                names = _template(node.args[position])
                if names is None:
                    self._forwarded(callee)
                else:
                    self.found.names.update(names)
                    if callee[1] in ("count", "count_keyed"):  # type: ignore[index]
                        self.direct.update(id(n) for n in ast.walk(node.args[position]))
                    if callee in SCORE_AWARE:
                        self.found.score_aware.update(names)
        if where is not None:
            given = node.args[where] if where < len(node.args) else next(
                (k.value for k in node.keywords if k.arg in WHERE_FIELDS), None)
            if given is not None:
                templates = _template(given)
                if templates is None:
                    self._forwarded(callee)
                self.found.where(templates)
        for keyword in node.keywords:
            if keyword.arg in WHERE_FIELDS:
                self.found.where(_template(keyword.value))
        self.generic_visit(node)

    def _forwarded(self, callee: tuple[str, str] | None) -> None:
        at = (self.name, self.functions[-1] if self.functions else "<module>")
        self.found.forwarders.add(at)
        if at not in FORWARDERS:
            self.found.unknown_forwarders.append(f"{at} calls {callee} with a name not written there")


class _Found:
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.score_aware: set[str] = set()
        self.areas: set[str] = set()
        self.unknown_forwarders: list[str] = []
        self.forwarders: set[tuple[str, str]] = set()

    def where(self, templates: list[str] | None) -> None:
        for template in templates or ():
            self.areas.add(template.split(".", 1)[0])


def code_counters(src: Path = SRC) -> _Found:
    """Every counter name, internal-error area and unexplained forwarding call under ``src``."""
    found = _Found()
    for path in sorted(src.rglob("*.py")):
        if "testing" in path.relative_to(src).parts:  # fakes for tests: no counters of autotrace's
            continue
        _Module(path, found).visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return found


def documented(doc: Path = DOC) -> set[str]:
    """The names each list item of the page starts with (before its first ``:``)."""
    items: list[str] = []
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("- `"):
            items.append(line[2:])
        elif line.startswith("  ") and items:
            items[-1] += " " + line.strip()
    names: set[str] = set()
    for item in items:
        head = item.split(": ", 1)[0] if ": " in item else ""
        names.update(re.findall(r"`([^`]+)`", head))
    return names


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("".join(re.escape(part) if not part.startswith("<") else r"[\w.:-]+"
                              for part in re.split(r"(<\w+>)", template) if part))


def missing_and_stale(found: _Found, listed: set[str]) -> tuple[list[str], list[str]]:
    """Counter names the page lacks, and names it lists that nothing counts."""
    listed_areas = {name.split(".")[1] for name in listed if name.startswith("internal_errors.") and name != _INTERNAL}
    missing = sorted(name for name in found.names if name not in listed)
    missing += sorted(f"internal_errors.{area}" for area in found.areas if area not in listed_areas)
    templates = [_pattern(name) for name in found.names if "<" in name and name != _INTERNAL]
    counted_for_scores = {name.replace("spans_", "scores_", 1) for name in found.score_aware}
    stale = sorted(
        name for name in listed
        if name not in found.names and name not in counted_for_scores
        and not (name.startswith("internal_errors.") and name.split(".")[1] in found.areas)
        and not any(pattern.fullmatch(name) for pattern in templates))
    return missing, stale


def test_every_counter_in_the_code_is_documented_and_every_documented_one_counted() -> None:
    found = code_counters()
    assert not found.unknown_forwarders, found.unknown_forwarders
    assert found.forwarders == FORWARDERS, f"forwarders gone from the code: {FORWARDERS - found.forwarders}"
    missing, stale = missing_and_stale(found, documented())
    assert missing == [], f"counted but not in docs/counters.md: {missing}"
    assert stale == [], f"in docs/counters.md but counted nowhere: {stale}"


def test_the_collection_reads_forwarded_and_templated_names() -> None:
    """The indirect names are found (so a test passing means the page was checked against them)."""
    found = code_counters()
    assert {"spans_dropped.queue_full", "spans_dropped.credentials_failed", "spans_dropped.tenant_retired",
            "scores_dropped.export_failed", "tenant_spans_evicted", "propagation_invalid_<header>",
            "local_store_pruned_<name>", "integration_failed.<name>", _INTERNAL, "spans_exported"} <= found.names
    assert {"spans_dropped.no_tenant", "spans_dropped.tenant_retired"} <= found.score_aware
    assert {"grpc", "openai", "shutdown", "flush", "threads", "class_family", "<store>", "export"} <= found.areas


def test_an_undocumented_counter_fails(tmp_path: Path) -> None:
    """A counter added to the code without a line here is reported, and so is a line left behind."""
    module = tmp_path / "added.py"
    module.write_text("from ._internal import count, guarded_failure\n\n\ndef f(exc):\n"
                      "    count('x_y')\n    guarded_failure('brand_new.step', exc)\n")
    found = code_counters(tmp_path)
    listed = documented() | {"gone_counter"}
    missing, stale = missing_and_stale(found, listed)
    assert missing == ["x_y", "internal_errors.brand_new"]
    assert "gone_counter" in stale
