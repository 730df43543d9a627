"""``os.exec*`` while installed (review 5): what is finished is exported first, within one bound per
exec, also when ``os.execvp`` tries the program in every ``PATH`` directory."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

import autotrace
from autotrace import _process_exit
from autotrace.runtime import state


def test_execvp_through_path_waits_for_a_hung_export_once_not_per_directory() -> None:
    """An export that hangs: the program looked up in three ``PATH`` directories waited the whole
    bound (2 s) at each; now the first try has it, and the others go on at once."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        autotrace.install(langfuse_host=f"http://127.0.0.1:{silent.getsockname()[1]}", public_key="pk-lf-1",
                          secret_key="sk-lf-1", export_timeout=60, unknown_tenant="default", integrations=(),
                          export_interval=0.05)
        pipeline: Any = state.pipeline
        own_flush, asked = pipeline.flush, []

        def flush(timeout: float) -> bool:
            asked.append(timeout)
            return bool(own_flush(timeout))

        pipeline.flush = flush
        with autotrace.start_span("before-exec"):
            pass
        with pytest.raises(FileNotFoundError):
            os.execvpe("autotrace-no-such-program", ["x"], {"PATH": "/nonexistent-a:/nonexistent-b:/nonexistent-c"})
        assert len(asked) == 1, asked  # (within the bound: what is left of it once the flush starts)
        assert 0 < asked[0] <= _process_exit.EXEC_FLUSH_SECONDS
        autotrace.uninstall(timeout=0.1)
