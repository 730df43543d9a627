"""SIGTERM set back to its default after ``install()`` keeps the flush: gunicorn's ``UvicornWorker``
(the usual way to serve FastAPI with gunicorn) resets it in each worker it forks, and uvicorn
re-raises the SIGTERM it caught once it has shut down; asyncio's ``remove_signal_handler`` resets
it too. Each worker ended by that default without its exit export: every span it had not exported
yet was lost."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from autotrace.export.local_store import LocalStore
from autotrace.testing.fake_openai import FakeOpenAI
from tests.helpers import isolated_env
from tests.test_app_servers import FASTAPI_APP, _assert_every_request_once, _free_port, _serve, fake

__all__ = ["fake"]  # the module's fake OpenAI server, shared with test_app_servers' fixture

_ASYNCIO_APP = """
import asyncio, os, signal, sys, time
import autotrace
autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=(), export_interval=30)

async def serve():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: None)
    loop.remove_signal_handler(signal.SIGTERM)  # SIGTERM is back at its default

asyncio.run(serve())
with autotrace.start_span("after-the-loop"):
    pass
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(30)
"""


def test_gunicorns_uvicorn_workers_export_every_request_at_sigterm(tmp_path: Path, fake: FakeOpenAI) -> None:
    port = _free_port()
    command = ["gunicorn", "-w", "2", "-k", "uvicorn.workers.UvicornWorker", "-b", f"127.0.0.1:{port}",
               "--no-control-socket", "app:app"]
    code, output, seen = _serve(tmp_path, fake, FASTAPI_APP, command, port)
    assert code == 0, output
    assert "Shutting down: Master" in output and "autotrace:" not in output, output
    assert all(answer["installed"] for answer in seen)
    # FastAPI's own four spans per request, /stats asked once more while the server came up
    _assert_every_request_once(tmp_path, extra_spans=4 * 10 + 4 * (len(seen) + 1))


def test_sigterm_reset_by_asyncio_still_exports_then_ends_the_process_by_it(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    done = subprocess.run([sys.executable, "-c", _ASYNCIO_APP, str(path)], env=isolated_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGTERM, done.stderr
    assert [o["name"] for o in LocalStore(path, read_only=True).observations()] == ["after-the-loop"]
