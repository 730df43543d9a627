"""Credentials resolvers: static, file (rotation, invalid file), environment, callable (TTL, failures,
concurrency, bound), and secrets never shown."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotrace.export.credentials import (
    CallableCredentials,
    ChainCredentials,
    Credentials,
    CredentialsError,
    EnvCredentials,
    LookupFailed,
    StaticCredentials,
    coerce_resolver,
)
from autotrace.export.credentials_file import FileCredentials

SECRET = "sk-lf-TOPSECRET-123"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_secret_never_in_repr_str_or_errors() -> None:
    creds = Credentials("pk-lf-1", SECRET, "http://lf:3000")
    assert SECRET not in repr(creds) and SECRET not in str(creds) and "***" in repr(creds)
    assert creds.authorization_header().startswith("Basic ")
    assert len(creds.fingerprint) == 16 and SECRET not in creds.fingerprint
    with pytest.raises(CredentialsError) as raised:
        Credentials("pk-lf-1", SECRET + " with space")
    assert SECRET not in str(raised.value)


def test_static_and_chain() -> None:
    static = StaticCredentials({"acme": ("pk-a", "sk-a"), "globex": {"public_key": "pk-g", "secret_key": "sk-g"}})
    assert static.resolve("acme") == Credentials("pk-a", "sk-a")
    assert static.resolve("globex").public_key == "pk-g"
    assert static.resolve("nobody") is None
    chain = ChainCredentials(StaticCredentials({}), static)
    assert chain.resolve("acme").public_key == "pk-a"
    assert static.stats()["unknown"] == 1


def test_file_credentials_toml_env_reference_and_rotation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_LF_SECRET", "sk-acme-1")
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.acme]\npublic_key = "pk-acme"\nsecret_key_env = "ACME_LF_SECRET"\n'
                    '[tenants.globex]\npublic_key = "pk-g"\nsecret_key = "sk-g"\nhost = "http://lf2:3000"\n')
    clock = Clock()
    resolver = FileCredentials(path, reload_interval=5, clock=clock)
    assert resolver.resolve("acme") == Credentials("pk-acme", "sk-acme-1")
    assert resolver.resolve("globex").host == "http://lf2:3000"
    path.write_text('[tenants.acme]\npublic_key = "pk-acme-2"\nsecret_key = "sk-acme-2"\n')
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert resolver.resolve("acme").public_key == "pk-acme"  # not re-checked before the interval
    clock.now += 6
    assert resolver.resolve("acme") == Credentials("pk-acme-2", "sk-acme-2")
    assert resolver.resolve("globex") is None


def test_invalid_file_keeps_last_good_and_never_logs_secrets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps({"tenants": {"acme": {"public_key": "pk-a", "secret_key": SECRET}}}))
    clock = Clock()
    resolver = FileCredentials(path, reload_interval=1, clock=clock)
    assert resolver.resolve("acme").secret_key == SECRET
    path.write_text('{"tenants": {"acme": {"public_key": "pk-a", "secret_key": "' + SECRET + '"')  # broken JSON
    os.utime(path, (time.time() + 10, time.time() + 10))
    clock.now += 2
    with caplog.at_level(logging.DEBUG, logger="autotrace"):
        assert resolver.resolve("acme").secret_key == SECRET
    assert "invalid" in caplog.text and SECRET not in caplog.text
    assert resolver.stats()["errors"] == 1


def test_missing_env_reference_only_disables_that_tenant(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[tenants.a]\npublic_key = "pk-a"\nsecret_key_env = "NOT_SET_ANYWHERE_XYZ"\n'
                    '[tenants.b]\npublic_key = "pk-b"\nsecret_key = "sk-b"\n')
    resolver = FileCredentials(path)
    with pytest.raises(LookupFailed):  # keys of its own, unusable: not an unknown tenant
        resolver.resolve("a")
    assert resolver.resolve("b").public_key == "pk-b" and resolver.known_tenants() == ["b"]


def test_environment_credentials() -> None:
    env = {"AUTOTRACE_TENANT_ACME_CORP_PUBLIC_KEY": "pk-ac", "AUTOTRACE_TENANT_ACME_CORP_SECRET_KEY": "sk-ac",
           "AUTOTRACE_TENANT_ACME_CORP_ID": "acme-corp"}
    resolver = EnvCredentials(environ=env)
    assert resolver.resolve("acme-corp") == Credentials("pk-ac", "sk-ac")
    env["AUTOTRACE_TENANT_ACME_CORP_SECRET_KEY"] = "sk-rotated"
    assert resolver.resolve("acme-corp").secret_key == "sk-rotated"
    assert resolver.resolve("other") is None


def test_environment_credentials_belong_to_exactly_one_tenant_id() -> None:
    """Ids that share an environment name never share its keys: without ``_ID`` the name belongs
    only to its lower-case id; with ``_ID`` only to that exact id."""
    env = {"AUTOTRACE_TENANT_ACME_CORP_PUBLIC_KEY": "pk-ac", "AUTOTRACE_TENANT_ACME_CORP_SECRET_KEY": "sk-ac"}
    resolver = EnvCredentials(environ=env)
    siblings = ["acme-corp", "acme.corp", "ACME_CORP", "ACME:corp", "Acme/Corp", "acme@corp"]
    assert resolver.resolve("acme_corp") == Credentials("pk-ac", "sk-ac")
    assert [resolver.resolve(t) for t in siblings] == [None] * len(siblings)
    env["AUTOTRACE_TENANT_ACME_CORP_ID"] = "acme.corp"
    assert resolver.resolve("acme.corp") == Credentials("pk-ac", "sk-ac")
    assert [resolver.resolve(t) for t in ["acme_corp", *siblings[:1], *siblings[2:]]] == [None] * len(siblings)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.from_regex(r"[aA1][aA1_.:@/-]{0,3}", fullmatch=True), min_size=2, max_size=6, unique=True),
       st.booleans())
def test_no_two_tenant_ids_ever_read_the_same_environment_keys(tenants: list[str], bind: bool) -> None:
    env: dict[str, str] = {}
    for i, tenant in enumerate(tenants):
        name = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in tenant).upper()
        env[f"AUTOTRACE_TENANT_{name}_PUBLIC_KEY"] = f"pk-{i}"
        env[f"AUTOTRACE_TENANT_{name}_SECRET_KEY"] = f"sk-{i}"
        if bind:
            env[f"AUTOTRACE_TENANT_{name}_ID"] = tenant
    resolver = EnvCredentials(environ=env)
    found = [c.public_key for c in map(resolver.resolve, tenants) if c is not None]
    assert len(found) == len(set(found))


def test_callable_ttl_stale_on_failure_and_negative_cache(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    calls: list[str] = []
    state = {"fail": False, "version": 1}

    def fetch(tenant: str) -> tuple[str, str] | None:
        calls.append(tenant)
        if state["fail"]:
            raise ConnectionError(f"vault down while holding {SECRET}")
        return (f"pk-{state['version']}", SECRET) if tenant == "acme" else None

    resolver = CallableCredentials(fetch, ttl=60, negative_ttl=10, clock=clock)
    assert resolver.resolve("acme").public_key == "pk-1"
    assert resolver.resolve("acme").public_key == "pk-1" and calls == ["acme"]
    state["version"] = 2
    clock.now += 61
    assert resolver.resolve("acme").public_key == "pk-2"
    state["fail"] = True
    clock.now += 61
    with caplog.at_level(logging.DEBUG, logger="autotrace"):
        assert resolver.resolve("acme").public_key == "pk-2"  # stale value while the store is down
    assert SECRET not in caplog.text and "ConnectionError" in caplog.text
    state["fail"] = False
    assert resolver.resolve("nobody") is None and resolver.resolve("nobody") is None
    assert calls.count("nobody") == 1


def test_callable_is_called_once_under_concurrency_and_bounded() -> None:
    started = threading.Event()
    calls: list[str] = []

    def slow(tenant: str) -> tuple[str, str]:
        calls.append(tenant)
        started.wait(0.2)
        return ("pk", "sk")

    resolver = CallableCredentials(slow, max_entries=3)
    threads = [threading.Thread(target=resolver.resolve, args=("acme",)) for _ in range(16)]
    for t in threads:
        t.start()
    started.set()
    for t in threads:
        t.join()
    assert calls == ["acme"]
    for tenant in ("a", "b", "c", "d"):
        resolver.resolve(tenant)
    assert resolver.stats()["evictions"] == 2


def test_coerce_resolver(tmp_path: Path) -> None:
    assert isinstance(coerce_resolver({"a": ("p", "s")}), StaticCredentials)
    assert isinstance(coerce_resolver(tmp_path / "x.toml"), FileCredentials)
    assert isinstance(coerce_resolver(lambda t: None), CallableCredentials)
    assert isinstance(coerce_resolver(None), EnvCredentials)
    with pytest.raises(CredentialsError):
        coerce_resolver(42)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["t.toml", "t.json"]))
def test_fuzzed_credentials_files_never_raise(tmp_path_factory: pytest.TempPathFactory, raw: bytes, name: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(raw)
    try:  # whatever the bytes: keys, none, or a lookup that failed (a file never read), nothing else
        result = FileCredentials(path).resolve("acme")
    except LookupFailed:
        return
    assert result is None or isinstance(result, Credentials)


@pytest.mark.parametrize("host", ["https://admin:hunter2pw@langfuse.acme.internal", "https://langfuse.acme?x=1",
                                  "ftp://langfuse.acme"])
def test_a_tenant_host_langfuse_cannot_take_is_refused_and_its_password_never_shown(host: str) -> None:
    """A user and password in a tenant's host were accepted, sent nowhere (the exporter sends the key
    pair) and shown by reprs and logs; a query would be cut off by the API paths appended."""
    with pytest.raises(CredentialsError) as raised:
        Credentials("pk-a", "sk-a", host=host)
    assert "hunter2pw" not in str(raised.value) and "http(s) URL" in str(raised.value)
    environ = {"AUTOTRACE_TENANT_ACME_PUBLIC_KEY": "pk-a", "AUTOTRACE_TENANT_ACME_SECRET_KEY": "sk-a",
               "AUTOTRACE_TENANT_ACME_HOST": host}
    with pytest.raises(LookupFailed) as failed:  # keys of its own, unusable: never the default project
        EnvCredentials(environ=environ).resolve("acme")
    assert "hunter2pw" not in str(failed.value)
