"""Langfuse keys with no Langfuse host (review 18). A team moving from the Langfuse SDK (whose host
defaults to its cloud) sets only ``LANGFUSE_PUBLIC_KEY``/``LANGFUSE_SECRET_KEY``; a multi-tenant one
sets each tenant's keys and ``_HOST`` in ``AUTOTRACE_TENANT_*`` variables. Without
``LANGFUSE_HOST`` autotrace sends nothing (Langfuse's cloud is never assumed), which is right, but it
said nothing either: the traces just never arrived. It is now said once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import isolated_env

AUTOTRACE = str(Path(sys.executable).with_name("autotrace"))
WARNING = ("autotrace: Langfuse keys are set but no Langfuse host (LANGFUSE_HOST, LANGFUSE_BASE_URL or "
           "AUTOTRACE_LANGFUSE_HOST): nothing is sent to Langfuse (its cloud is never assumed)\n")
_APP = ("import autotrace\n"
        "with autotrace.tenant('acme'), autotrace.start_span('work'):\n"
        "    pass\n"
        "autotrace.install(service_name='again')\n"  # a second install says it no more
        "print('ran')\n")
_DEFAULT_KEYS = {"LANGFUSE_PUBLIC_KEY": "pk-lf-1", "LANGFUSE_SECRET_KEY": "sk-lf-1"}
_TENANT_KEYS = {"AUTOTRACE_TENANT_ACME_PUBLIC_KEY": "pk-lf-a", "AUTOTRACE_TENANT_ACME_SECRET_KEY": "sk-lf-a",
                "AUTOTRACE_TENANT_ACME_HOST": "http://127.0.0.1:9"}


def _run(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "app.py").write_text(_APP)
    env = isolated_env(tmp_path, AUTOTRACE_LOCAL_STORE_PATH=str(tmp_path / "traces.db"), **extra)
    return subprocess.run([AUTOTRACE, "run", "--", sys.executable, "app.py"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("keys", [_DEFAULT_KEYS, _TENANT_KEYS], ids=["default", "tenant"])
def test_keys_without_a_host_are_said_once(tmp_path: Path, keys: dict[str, str]) -> None:
    done = _run(tmp_path, **keys)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ran\n", WARNING)


def test_keys_with_a_host_or_no_keys_say_nothing(tmp_path: Path) -> None:
    assert _run(tmp_path).stderr == ""
    with_host = _run(tmp_path, **_TENANT_KEYS, LANGFUSE_HOST="http://127.0.0.1:9", AUTOTRACE_EXPORT_TIMEOUT="0.5",
                     AUTOTRACE_MAX_RETRIES="0")
    assert WARNING not in with_host.stderr
