"""The pinecone integration and the installed SDK: pinecone 5-8 (the openapi-generated client, its
``Index`` in ``pinecone.data``/``pinecone.db_data``) have none of the classes it patches, so the
integration declines them by version, saying so once, instead of patching nothing and warning that
its ``Index`` methods cannot be patched."""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path

import pytest
from packaging.version import Version

import autotrace
from autotrace.integrations.vectorstores.pinecone import INTEGRATION

pinecone = pytest.importorskip("pinecone")


def test_the_integration_patches_the_installed_sdk_or_declines_its_version(tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=("pinecone",))
    assert "cannot patch" not in caplog.text
    stats = autotrace.stats()
    assert stats.get("integration_patch_skipped.pinecone", 0) == 0
    if Version(importlib.metadata.version("pinecone")) < Version("9"):
        assert "outside the supported range" in caplog.text
        assert stats["integration_skipped.pinecone"] == 1 and not INTEGRATION.instrumented
    else:
        assert INTEGRATION.instrumented and INTEGRATION.patcher.applied > 0
