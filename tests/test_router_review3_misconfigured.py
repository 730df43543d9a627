"""A tenant whose own keys are configured but unusable (a host without its scheme, a secret whose
variable is not set, a key pair half set) is not an unknown tenant: under ``unknown_tenant="default"``
old code sent its spans to the default project. They are now dropped, counted as
``spans_dropped.credentials_failed``, as when a secret store is down. A score the router drops for
such a reason is counted as a score (``scores_dropped.*``)."""

from __future__ import annotations

from pathlib import Path

import pytest

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span


def _spans_of_acme_and_a_stranger(rx: OtlpReceiver, credentials: object) -> None:
    autotrace.install(langfuse_host=rx.endpoint, public_key="pk-default", secret_key="sk-default",
                      unknown_tenant="default", credentials=credentials, integrations=(), local_store="off",
                      export_interval=0.05)
    ended_span("of acme", "acme")
    ended_span("of a stranger", "globex")  # no keys at all: the default project's, by policy
    assert autotrace.flush(10)
    assert [s.name for s in rx.wait_for_spans(1)] == ["of a stranger"]
    stats = autotrace.stats()
    assert (stats.get("spans_dropped.credentials_failed"), stats.get("spans_exported")) == (1, 1)


@pytest.mark.parametrize("variables", [
    {"PUBLIC_KEY": "pk-acme", "SECRET_KEY": "sk-acme", "HOST": "langfuse.acme.example"},  # no scheme
    {"PUBLIC_KEY": "pk-acme", "SECRET_KEY": "sk acme"},  # a space inside
    {"PUBLIC_KEY": "pk-acme"},  # its secret not mounted
], ids=["host", "secret", "half"])
def test_env_keys_of_a_tenant_that_cannot_be_used_never_go_to_the_default_project(
        rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(f"AUTOTRACE_TENANT_ACME_{name}", value)
    _spans_of_acme_and_a_stranger(rx, None)


def test_a_file_tenant_whose_secret_variable_is_unset_never_goes_to_the_default_project(
        rx: OtlpReceiver, tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.acme]\npublic_key = "pk-acme"\nsecret_key_env = "ACME_LF_SECRET"\n')
    _spans_of_acme_and_a_stranger(rx, path)


@pytest.mark.parametrize(("tenant", "reason"), [(None, "no_tenant"), ("globex", "unknown_tenant"),
                                                ("acme", "credentials_failed")])
def test_a_score_the_router_drops_is_counted_as_a_score(rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch,
                                                        tenant: str | None, reason: str) -> None:
    """Scores are counted apart from spans: old code counted these as ``spans_dropped.*``."""
    monkeypatch.setenv("AUTOTRACE_TENANT_ACME_PUBLIC_KEY", "pk-acme")  # half set: its lookup fails
    autotrace.install(langfuse_host=rx.endpoint, credentials=None, integrations=(), local_store="off",
                      export_interval=0.05)
    assert autotrace.score("quality", 1.0, trace_id="1" * 32, tenant=tenant) is not None
    assert autotrace.flush(10)
    dropped = {k: v for k, v in autotrace.stats().items() if "_dropped." in k}
    assert dropped == {f"scores_dropped.{reason}": 1} and rx.scores == []
