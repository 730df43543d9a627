"""``uninstall()`` lets go of the claims Langfuse SDK clients noted at their spans' starts (kept
through the shutdown, which routes what the pipeline still holds): after it, none is held, however
many spans never reached the router (dropped before routing, still open)."""

from __future__ import annotations

from pathlib import Path

import autotrace
from autotrace import _langfuse_sdk


def test_uninstall_holds_no_claim_after_its_shutdown(tmp_path: Path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=())
    _langfuse_sdk.claimed[0x1234] = (lambda: None, bool, bool, None, "pk-lf-x")  # a span never routed
    autotrace.uninstall()
    assert len(_langfuse_sdk.claimed) == 0
