"""Keys a secret store or a mounted file hands back end with a newline (``Path.read_text()``, a
vault value written with ``echo``): environment variables were read stripped, but a credentials
callable's answer was refused whole, so every span of that tenant was dropped as
``credentials_failed`` (logged as if the function had raised), and a rotation to such keys kept
sending the old, revoked ones. Surrounding whitespace is stripped as environment variables' is;
whitespace inside a key is still refused. Real OTLP to loopback receivers."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

import autotrace
from autotrace.export.credentials import Credentials, CredentialsError
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span


def test_keys_read_from_files_with_their_newline_export_the_tenants_spans(rx: OtlpReceiver, tmp_path: Path) -> None:
    (tmp_path / "public").write_text("pk-lf-acme\n")
    (tmp_path / "secret").write_text("  sk-lf-acme\r\n")
    with OtlpReceiver() as acme:
        (tmp_path / "host").write_text(acme.endpoint + "\n")

        def secret_store(tenant: str) -> dict[str, str] | None:
            if tenant != "acme":
                return None
            return {name + "_key" if name != "host" else name: (tmp_path / name).read_text()
                    for name in ("public", "secret", "host")}

        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-default", secret_key="sk-default",
                          unknown_tenant="drop", credentials=secret_store, integrations=(), local_store="off",
                          export_interval=0.05, max_retries=1)
        ended_span("of acme", "acme")
        assert autotrace.flush(10)
        sent = acme.wait_for_spans(1)
    assert [(span.name, span.headers["x-langfuse-public-key"], span.headers["authorization"]) for span in sent] == [
        ("of acme", "pk-lf-acme", "Basic " + base64.b64encode(b"pk-lf-acme:sk-lf-acme").decode())]
    assert rx.spans == []
    assert not {key for key in autotrace.stats() if key.startswith("spans_dropped.")}


def test_the_keys_are_kept_stripped_and_inner_whitespace_still_refused() -> None:
    keys = Credentials(" pk-lf-1\n", "sk-lf-1\n", "https://lf.example.com\n")
    assert (keys.public_key, keys.secret_key, keys.host) == ("pk-lf-1", "sk-lf-1", "https://lf.example.com")
    assert keys == Credentials("pk-lf-1", "sk-lf-1", "https://lf.example.com")
    with pytest.raises(CredentialsError) as raised:
        Credentials("pk-lf-1", "sk-lf 1\n")
    assert str(raised.value) == "secret_key must not contain whitespace or control characters"
