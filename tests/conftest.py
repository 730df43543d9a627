"""Shared fixtures: an isolated environment, an installed autotrace writing to a temporary local
store, and helpers to read finished observations back as exact trees."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import openai
import pytest
from opentelemetry import trace

import autotrace
from autotrace.integrations.openai import pricing
from autotrace.testing.fake_openai import FakeOpenAI
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import CERTS, Traced, server_tls

if TYPE_CHECKING:
    from autotrace.testing._fake_openai_websocket import FakeResponsesWebSocket

_CLEARED_PREFIXES = ("AUTOTRACE_", "LANGFUSE_", "OTEL_")
#: ``http_proxy``, ``HTTPS_PROXY``, ``no_proxy``...: loopback exports would go through the developer's proxy.
_CLEARED_SUFFIX = "_proxy"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES) or name.lower().endswith(_CLEARED_SUFFIX):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTOTRACE_HOME", str(tmp_path / "home"))
    autotrace.reset_stats()
    yield
    autotrace.uninstall(timeout=2.0)
    leaked = trace.get_current_span().get_span_context()
    assert not leaked.is_valid, "a test left a span attached to the context"


@pytest.fixture(autouse=True)
def _prices_restored() -> Iterator[None]:
    """``set_prices`` edits the price tables of the process: each test gets them as they were."""
    tables: list[dict | set] = [pricing._PRICES, pricing._LONG_CONTEXT, pricing._CACHE_WRITE,  # type: ignore[type-arg]
                                pricing._PRICES_PER_MINUTE, pricing._PRICES_PER_MILLION_CHARACTERS,
                                pricing._PRICES_BY_KIND]
    saved = [table.copy() for table in tables]
    yield
    for table, copy in zip(tables, saved, strict=True):
        table.clear()
        table.update(copy)  # type: ignore[arg-type]
    pricing._RESOLVED.clear()


@pytest.fixture
def traced(tmp_path: Path, request: pytest.FixtureRequest) -> Traced:
    """autotrace installed into a temporary local store, with the integrations named by the
    module's or test's ``@pytest.mark.integrations(...)`` (none by default)."""
    marker = request.node.get_closest_marker("integrations")
    path = tmp_path / "traces.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=tuple(marker.args) if marker else (),
                      export_interval=0.05)
    return Traced(path)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    """A loopback OpenAI-compatible server."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk  # its connections closed after the test, not left to a later test's collection


@pytest.fixture
def aclient(fake: FakeOpenAI) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)


@pytest.fixture
def ws() -> Iterator[FakeResponsesWebSocket]:
    """A loopback server of the Responses API's WebSocket mode (``FakeResponsesWebSocket``)."""
    from autotrace.testing._fake_openai_websocket import FakeResponsesWebSocket  # websockets: only where used

    with FakeResponsesWebSocket() as server:
        yield server




@pytest.fixture
def rx() -> Iterator[OtlpReceiver]:
    """A loopback OTLP receiver (a tenant's Langfuse, as far as autotrace can tell)."""
    with OtlpReceiver() as receiver:
        yield receiver
        # uninstalled while the receiver still answers: spans a test left unflushed go out at once
        # instead of retrying a closed port until ``_isolated``'s uninstall times out (2 s)
        autotrace.uninstall(timeout=2.0)


@pytest.fixture
def tls_rx(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """A loopback OTLP receiver serving HTTPS on 127.0.0.1 with the test certificate of
    ``tests/certs``, whose CA the client trusts (``SSL_CERT_FILE``)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(CERTS / "ca.pem"))
    with OtlpReceiver(tls=server_tls()) as receiver:
        yield receiver


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A real Postgres 16 with pgvector (the pgserver wheel), started once for the session (seconds to
    start and stop): its URI. Each module sets up its own tables (``tests.test_vs_pgvector.postgres``)."""
    pgserver = pytest.importorskip("pgserver")
    # a directory of its own, not under pytest's numbered temporary directories: another pytest
    # process on the machine prunes those it counts as old, and the server runs as another user
    data = Path(tempfile.mkdtemp(prefix="autotrace-pg-"))
    try:
        server = pgserver.get_server(data, cleanup_mode="stop")
        yield server.get_uri()
        server.cleanup()
    finally:
        shutil.rmtree(data, ignore_errors=True)
