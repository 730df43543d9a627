"""A tenant's keys given as the Langfuse SDK takes them (``Langfuse(public_key=, secret_key=, base_url=)``,
``base_url`` being the SDK's name for the host, as ``LANGFUSE_BASE_URL`` is): the ``base_url`` was
ignored, so the tenant's spans and its secret key went to the default Langfuse host, one they are not
for. Now ``base_url`` is the tenant's host (from a resolver's mapping or a credentials file); given
with a different ``host``, the lookup fails (never the default project). So does a tenant's
``AUTOTRACE_TENANT_<NAME>_BASE_URL`` variable, as ``LANGFUSE_BASE_URL`` names the default host."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import autotrace
from autotrace.export.credentials import CredentialsError, EnvCredentials, LookupFailed, to_credentials
from autotrace.export.credentials_file import FileCredentials
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import basic_auth, ended_span


def test_a_resolvers_base_url_is_the_tenants_host(rx: OtlpReceiver) -> None:
    with OtlpReceiver() as acme:
        autotrace.install(langfuse_host=rx.endpoint, integrations=(), export_interval=0.05, local_store="off",
                          credentials=lambda tenant: {"public_key": "pk-acme", "secret_key": "sk-acme",
                                                      "base_url": acme.endpoint})
        ended_span("of acme", "acme")
        assert autotrace.flush(10)
        assert [(s.name, s.headers["authorization"]) for s in acme.wait_for_spans(1)] == [
            ("of acme", basic_auth("pk-acme", "sk-acme"))]
    assert rx.requests == []


def test_a_host_and_a_different_base_url_are_refused() -> None:
    keys = {"public_key": "pk", "secret_key": "sk", "host": "https://eu.example.com"}
    assert to_credentials({**keys, "base_url": "https://eu.example.com"}).host == "https://eu.example.com"  # type: ignore[union-attr]
    with pytest.raises(CredentialsError, match="host and base_url"):
        to_credentials({**keys, "base_url": "https://us.example.com"})


def test_a_credentials_files_base_url_is_the_tenants_host(tmp_path: Path) -> None:
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.acme]\npublic_key = "pk-acme"\nsecret_key = "sk-acme"\n'
                    'base_url = "https://eu.example.com"\n')
    found = FileCredentials(path).resolve("acme")
    assert (found.public_key, found.host) == ("pk-acme", "https://eu.example.com")  # type: ignore[union-attr]


def test_a_tenants_base_url_variable_is_its_host() -> None:
    environ = {"AUTOTRACE_TENANT_ACME_PUBLIC_KEY": "pk-acme", "AUTOTRACE_TENANT_ACME_SECRET_KEY": "sk-acme",
               "AUTOTRACE_TENANT_ACME_BASE_URL": "https://eu.example.com"}
    assert EnvCredentials(environ=environ).resolve("acme").host == "https://eu.example.com"  # type: ignore[union-attr]
    with pytest.raises(LookupFailed):  # two different hosts: neither is guessed
        EnvCredentials(environ={**environ, "AUTOTRACE_TENANT_ACME_HOST": "https://us.example.com"}).resolve("acme")


def test_a_tenants_base_url_variable_is_no_typo(caplog: pytest.LogCaptureFixture) -> None:
    from autotrace.config import load_settings

    with caplog.at_level(logging.WARNING, logger="autotrace"):
        load_settings(env={"AUTOTRACE_TENANT_ACME_BASE_URL": "https://lf.acme.example"})
    assert [r.getMessage() for r in caplog.records if "is not a setting" in r.getMessage()] == []
