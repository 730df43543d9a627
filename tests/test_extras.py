"""The install extras never allow a version of a traced library that its integration does not support."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

PYPROJECT = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())


def _integrations() -> list[object]:
    found = []
    for target in PYPROJECT["project"]["entry-points"]["autotrace.integrations"].values():
        module, _, name = target.partition(":")
        found.append(getattr(importlib.import_module(module), name))
    return found


def _extras_requirements() -> dict[str, Requirement]:
    requirements = {}
    for extra, items in PYPROJECT["project"]["optional-dependencies"].items():
        for item in items:
            requirement = Requirement(item)
            if requirement.name != "autotrace" and extra not in ("bench",):
                requirements.setdefault(requirement.name, requirement)
    return requirements


def test_every_extra_bounds_its_library_as_the_integration_does() -> None:
    requirements = _extras_requirements()
    checked = []
    for integration in _integrations():
        distribution = getattr(integration, "distribution", None)
        if distribution is None or distribution not in requirements:
            continue
        supported = SpecifierSet(integration.supported)  # type: ignore[attr-defined]
        upper = {spec for spec in supported if spec.operator in ("<", "<=")}
        allowed = requirements[distribution].specifier
        assert upper <= set(allowed), f"{distribution}: extra {allowed} lacks {upper}"
        lower = next((spec for spec in allowed if spec.operator == ">="), None)
        assert lower is not None and lower.version in supported, f"{distribution}: extra {allowed} vs {supported}"
        checked.append(distribution)
    assert sorted(checked) == ["chromadb", "faiss-cpu", "grpcio", "langchain-core", "llama-index-core", "mcp",
                               "openai", "pinecone", "psycopg", "qdrant-client"]
