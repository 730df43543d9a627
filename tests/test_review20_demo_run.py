"""The demo as a first-time user sees it: the same refund id every run, the redaction placeholders
and the guardrail's rewrite visible in the printed tree (they were past the previews' cut), the
service of each side of the gRPC hop named, and how to reach the ``autotrace`` command it suggests
when its virtualenv is not activated (``make demo`` activates none)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autotrace.demo import run_demo


def test_the_refund_id_is_the_same_in_every_process() -> None:
    code = ("import json; from autotrace.demo.agent_service import issue_refund; "
            "print(json.dumps(issue_refund.__wrapped__('A-1001', 49.9)))")
    outputs = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                              capture_output=True, text=True, check=True, timeout=60).stdout for seed in ("1", "2")}
    assert [json.loads(out) for out in outputs] == [{"refund_id": "R-7986", "order_id": "A-1001", "amount": 49.9}]


def test_what_the_demo_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no autotrace command on it
    assert run_demo(db=tmp_path / "demo.db") == 0
    lines = capsys.readouterr().out.splitlines()
    body = [line.split("  #")[0].strip("│└├─ ") for line in lines]
    acme = body[body.index("=== tenant acme: one trace across agent-service, rag-service; tenants in it: acme"):]
    assert acme[2:5] == ["[CHAIN] customer-turn  " + acme[2].split("  ")[1] + "  service=agent-service",
                         "in:  My card <CREDIT_CARD> was charged twice for order A-1001, p…",
                         "out: Refund R-7986 (49.9 EUR) is on its way. Questions: <EMAIL>"]
    assert sum(line.endswith("service=rag-service") for line in acme[:acme.index("answer: Refund R-7986 (49.9 EUR) "
                                                                                 "is on its way. Questions: "
                                                                                 "support@example.com")]) == 1
    guard = next(i for i, line in enumerate(body) if "card-number-guard" in line and "modified" in line)
    assert body[guard].endswith("  not passed, modified: card number removed")
    assert body[guard + 1:guard + 3] == ["in:  Your card <CREDIT_CARD> was not charged again. A delayed or…",
                                         "out: Your card [card on file] was not charged again. A delayed o…"]
    script = Path(sys.executable).parent / "autotrace"
    assert lines[-2] == (f"(autotrace here is {script}: run `source {script.parent / 'activate'}` first, "
                         "or type that path)")
    assert lines[-1].startswith(f"stored in {tmp_path / 'demo.db'}. Try: autotrace --db ")
