"""A credentials resolver of the user's own that answers the wrong way.

An object with ``resolve()`` that returns a mapping or a pair (as a callable may) crashed the
pipeline thread applying the lookup (``internal_errors.pipeline.drain``) and every span of that
tenant was lost, uncounted; one returning anything else did the same. It now answers as a callable
does, and anything else is a failed lookup (``spans_dropped.credentials_failed``, never the default
project). An ``async`` resolver, whose coroutine was never awaited, is refused at ``install()``.
"""

from __future__ import annotations

import base64
import inspect
from typing import Any

import pytest

import autotrace
from autotrace.config import ConfigError
from autotrace.export.credentials import CredentialsError, LookupFailed, coerce_resolver, to_credentials
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span


class Answering:
    """A resolver that answers ``answer`` for acme and None for any other tenant."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def resolve(self, tenant: str) -> Any:
        return self.answer if tenant == "acme" else None


def _install(default: OtlpReceiver, resolver: object) -> None:
    autotrace.install(langfuse_host=default.endpoint, public_key="pk-default", secret_key="sk-default",
                      unknown_tenant="default", credentials=resolver, integrations=(), local_store="off",
                      export_interval=0.05)


@pytest.mark.parametrize("shape", ["mapping", "pair"])
def test_a_resolver_object_may_answer_a_mapping_or_a_pair(rx: OtlpReceiver, shape: str) -> None:
    with OtlpReceiver() as acme:
        keys = {"public_key": "pk-acme", "secret_key": "sk-acme", "host": acme.endpoint}
        _install(rx, Answering(keys if shape == "mapping" else ("pk-acme", "sk-acme", acme.endpoint)))
        ended_span("of acme", "acme")
        assert autotrace.flush(10)
        sent = acme.wait_for_spans(1)
        assert [(s.name, s.headers["authorization"]) for s in sent] == [
            ("of acme", "Basic " + base64.b64encode(b"pk-acme:sk-acme").decode())]
    assert rx.spans == []
    stats = autotrace.stats()
    assert not {k: v for k, v in stats.items() if k.startswith(("internal_errors.pipeline", "spans_dropped."))}


@pytest.mark.parametrize("answer", ["pk-acme:sk-acme", 42, {"public_key": "pk-acme"}], ids=["str", "int", "half"])
def test_a_resolver_object_answering_junk_is_a_failed_lookup_never_the_default_project(
        rx: OtlpReceiver, answer: object) -> None:
    _install(rx, Answering(answer))
    ended_span("of acme", "acme")
    ended_span("of a stranger", "globex")  # no keys: the default project's, by policy
    assert autotrace.flush(10)
    assert [s.name for s in rx.wait_for_spans(1)] == ["of a stranger"]
    stats = autotrace.stats()
    assert stats.get("spans_dropped.credentials_failed") == 1
    assert "internal_errors.pipeline.drain" not in stats


async def _async_lookup(tenant: str) -> dict[str, str]:
    return {"public_key": "pk", "secret_key": "sk"}


class AsyncResolver:
    async def resolve(self, tenant: str) -> dict[str, str]:
        return {"public_key": "pk", "secret_key": "sk"}


@pytest.mark.parametrize("resolver", [_async_lookup, AsyncResolver()], ids=["function", "resolver"])
def test_an_async_resolver_is_refused_at_install(rx: OtlpReceiver, resolver: object) -> None:
    with pytest.raises(ConfigError, match=r"setting 'credentials': .* async"):
        _install(rx, resolver)
    with pytest.raises(CredentialsError, match="async"):
        coerce_resolver(resolver)


def test_a_lookup_answering_a_coroutine_closes_it_and_fails() -> None:
    """A plain function that hands back an async client's coroutine: refused, and closed (never
    left to warn that it was not awaited, once per lookup)."""
    pending = _async_lookup("acme")
    with pytest.raises(CredentialsError, match="awaitable"):
        to_credentials(pending)
    assert inspect.getcoroutinestate(pending) == inspect.CORO_CLOSED
    resolver = coerce_resolver(lambda tenant: _async_lookup(tenant))
    with pytest.raises(LookupFailed):
        resolver.resolve("acme")
