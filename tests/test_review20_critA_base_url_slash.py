"""A tenant's ``host`` and ``base_url`` given both, one with a trailing ``/`` (as a Langfuse URL is often
written), name the same host (the export drops the ``/``): the keys are used. Before, the lookup failed
as "different hosts" and the tenant's spans were dropped."""

from __future__ import annotations

import pytest

from autotrace.export.credentials import Credentials, CredentialsError, EnvCredentials, to_credentials


def test_host_and_base_url_differing_by_a_trailing_slash_are_one_host() -> None:
    assert to_credentials({"public_key": "pk-lf-1", "secret_key": "sk-lf-1", "host": "https://lf.example",
                           "base_url": "https://lf.example/"}) == Credentials("pk-lf-1", "sk-lf-1", "https://lf.example")
    env = {"AUTOTRACE_TENANT_ACME_PUBLIC_KEY": "pk-lf-2", "AUTOTRACE_TENANT_ACME_SECRET_KEY": "sk-lf-2",
           "AUTOTRACE_TENANT_ACME_HOST": "https://lf.example/", "AUTOTRACE_TENANT_ACME_BASE_URL": "https://lf.example"}
    assert EnvCredentials(environ=env).resolve("acme") == Credentials("pk-lf-2", "sk-lf-2", "https://lf.example/")


def test_host_and_base_url_naming_different_hosts_still_fail() -> None:
    with pytest.raises(CredentialsError, match="different hosts"):
        to_credentials({"public_key": "pk-lf-1", "secret_key": "sk-lf-1", "host": "https://a.example",
                        "base_url": "https://b.example"})
