"""Export TLS settings: a private CA's bundle trusted in addition to the system CAs
(``export_ca_file``), mutual TLS (``export_client_cert``/``export_client_key``), and one TLS context
per install shared by every connection. Real sockets on 127.0.0.1: an OTLP receiver serving TLS
with the test-only certificates of ``tests/certs``; the process-wide ``SSL_CERT_FILE`` is unset
unless a test sets it to stand for the system CAs."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

import autotrace
import autotrace.export.tls as tls_module
from autotrace.config import ConfigError, Settings, load_settings
from autotrace.export.langfuse import LangfuseSink
from autotrace.export.otlp_http import HttpTarget
from autotrace.export.tls import export_context
from autotrace.runtime import state
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import CERTS, install_default_tenant, server_tls
from tests.proxy_server import ProxyServer

CA, CLIENT_CA = CERTS / "ca.pem", CERTS / "client-ca.pem"
CLIENT_CERT, CLIENT_KEY = CERTS / "client.pem", CERTS / "client-key.pem"
GARBAGE = "not a certificate: s3cret-content"


@pytest.fixture(autouse=True)
def _no_process_wide_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test CA is trusted only through the settings under test."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


@pytest.fixture
def tls_rx() -> Iterator[OtlpReceiver]:
    with OtlpReceiver(tls=server_tls()) as receiver:
        yield receiver


@pytest.fixture
def mtls_rx() -> Iterator[OtlpReceiver]:
    with OtlpReceiver(tls=server_tls(client_ca=CLIENT_CA)) as receiver:
        yield receiver


def _export(n: int = 2, score: bool = False) -> int:
    """Spans (and a score) as the host app makes them; returns the app's own answer."""
    for i in range(n):
        with autotrace.start_span(f"step-{i}") as span:
            span.set_output(f"output {i}")
            if score and i == 0:
                autotrace.score("helpful", True)
    assert autotrace.flush(10)
    return 42


def _assert_failed_counted(rx: OtlpReceiver) -> None:
    stats = autotrace.stats()
    assert rx.spans == [] and "spans_exported" not in stats
    assert stats["export_failures.langfuse:default"] >= 1 and stats["spans_dropped.export_failed"] >= 1


# -- a private CA --------------------------------------------------------------------------------------
def test_the_ca_file_is_trusted_for_spans_and_scores_end_to_end(tls_rx: OtlpReceiver) -> None:
    install_default_tenant(tls_rx, "tls", export_ca_file=str(CA), max_retries=0)
    assert _export(2, score=True) == 42
    assert sorted(s.name for s in tls_rx.wait_for_spans(2)) == ["step-0", "step-1"]
    assert len(tls_rx.scores) == 1
    assert autotrace.stats()["spans_exported"] == 2 and "export_failures" not in autotrace.stats()


def test_without_the_ca_file_the_export_fails_counted_and_the_app_goes_on(
        tls_rx: OtlpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="autotrace"):
        install_default_tenant(tls_rx, "tls", max_retries=0)
        assert _export(1) == 42
    _assert_failed_counted(tls_rx)
    assert "SSLCertVerificationError" in caplog.text


def test_the_ca_file_from_the_environment_with_a_home_relative_path(
        tls_rx: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "corp-ca.pem").write_bytes(CA.read_bytes())
    monkeypatch.setenv("AUTOTRACE_EXPORT_CA_FILE", "~/corp-ca.pem")
    install_default_tenant(tls_rx, "tls", max_retries=0)
    assert state.settings is not None and state.settings.export_ca_file == tmp_path / "corp-ca.pem"
    _export(2)
    assert len(tls_rx.wait_for_spans(2)) == 2 and "export_failures" not in autotrace.stats()


def test_the_system_cas_stay_trusted_with_a_ca_file(tls_rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """``SSL_CERT_FILE`` stands for the system store here (``create_default_context`` reads it):
    the receiver's CA is trusted through it while ``export_ca_file`` names an unrelated CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(CA))
    install_default_tenant(tls_rx, "tls", export_ca_file=CLIENT_CA, max_retries=0)
    _export(1)
    assert len(tls_rx.wait_for_spans(1)) == 1 and "export_failures" not in autotrace.stats()


def test_the_context_holds_the_system_cas_and_the_ca_file() -> None:
    context = export_context(Settings(export_ca_file=CA))
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    only_test_ca = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    only_test_ca.load_verify_locations(CA)
    assert context.cert_store_stats()["x509_ca"] == system + 1
    assert context.cert_store_stats()["x509_ca"] > only_test_ca.cert_store_stats()["x509_ca"] or system == 0
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_the_proxy_tunnel_uses_the_ca_file(tls_rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    with ProxyServer() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        install_default_tenant(tls_rx, "tls", export_ca_file=CA, max_retries=0)
        _export(2)
        assert proxy.lines == [f"CONNECT 127.0.0.1:{tls_rx.port} HTTP/1.1"]
    assert len(tls_rx.wait_for_spans(2)) == 2 and "export_failures" not in autotrace.stats()


# -- mutual TLS -----------------------------------------------------------------------------------------
def test_mutual_tls_with_a_client_certificate_and_key(mtls_rx: OtlpReceiver) -> None:
    install_default_tenant(mtls_rx, "tls", export_ca_file=CA, export_client_cert=CLIENT_CERT, export_client_key=CLIENT_KEY,
             max_retries=0)
    _export(2, score=True)
    assert len(mtls_rx.wait_for_spans(2)) == 2 and len(mtls_rx.scores) == 1
    assert "export_failures" not in autotrace.stats()


def test_mutual_tls_from_the_environment_with_the_key_in_the_certificate_file(
        mtls_rx: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    both = tmp_path / "client-and-key.pem"
    both.write_bytes(CLIENT_CERT.read_bytes() + CLIENT_KEY.read_bytes())
    monkeypatch.setenv("AUTOTRACE_EXPORT_CA_FILE", str(CA))
    monkeypatch.setenv("AUTOTRACE_EXPORT_CLIENT_CERT", str(both))
    install_default_tenant(mtls_rx, "tls", max_retries=0)
    _export(1)
    assert len(mtls_rx.wait_for_spans(1)) == 1 and "export_failures" not in autotrace.stats()


def test_without_a_client_certificate_mutual_tls_fails_counted_and_the_app_goes_on(mtls_rx: OtlpReceiver) -> None:
    install_default_tenant(mtls_rx, "tls", export_ca_file=CA, max_retries=0)
    assert _export(1) == 42
    _assert_failed_counted(mtls_rx)


# -- invalid settings --------------------------------------------------------------------------------------
def _bad_files(tmp_path: Path) -> dict[str, Path]:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text(GARBAGE)
    return {"missing": tmp_path / "missing.pem", "garbage": garbage, "directory": tmp_path}


_VARIABLES = {"export_ca_file": "AUTOTRACE_EXPORT_CA_FILE", "export_client_cert": "AUTOTRACE_EXPORT_CLIENT_CERT",
              "export_client_key": "AUTOTRACE_EXPORT_CLIENT_KEY"}
_LANGFUSE = {"langfuse_host": "https://langfuse.example.com"}


def _load(source: str, options: dict[str, object]) -> Settings:
    """``load_settings`` with ``options`` as keywords or as their environment variables."""
    if source == "keyword":
        return load_settings({**_LANGFUSE, **options}, env={})
    return load_settings(_LANGFUSE, env={_VARIABLES[k]: str(v) for k, v in options.items()})


@pytest.mark.parametrize("source", ["keyword", "env"])
@pytest.mark.parametrize("bad", ["missing", "garbage", "directory"])
@pytest.mark.parametrize("setting", ["export_ca_file", "export_client_cert", "export_client_key"])
def test_an_unusable_file_is_a_config_error_naming_the_setting_and_its_source(
        setting: str, bad: str, source: str, tmp_path: Path) -> None:
    options: dict[str, object] = {"export_client_cert": CLIENT_CERT} if setting == "export_client_key" else {}
    options[setting] = _bad_files(tmp_path)[bad]
    with pytest.raises(ConfigError) as raised:
        _load(source, options)
    message = str(raised.value)
    assert f"setting '{setting}'" in message
    assert ("keyword argument" if source == "keyword" else _VARIABLES[setting]) in message
    assert GARBAGE not in message and "s3cret" not in message


@pytest.mark.parametrize("source", ["keyword", "env"])
@pytest.mark.parametrize(("options", "setting", "why"), [
    ({"export_client_key": CLIENT_KEY}, "export_client_key", "without export_client_cert"),
    ({"export_client_cert": CLIENT_CERT}, "export_client_cert", "no private key"),
    ({"export_client_cert": CLIENT_CERT, "export_client_key": CERTS / "server-key.pem"}, "export_client_key",
     "not the private key of export_client_cert"),
    ({"export_client_cert": CLIENT_CERT, "export_client_key": CERTS / "client-key-encrypted.pem"},
     "export_client_key", "encrypted"),
    ({"export_client_cert": CLIENT_KEY, "export_client_key": CLIENT_KEY}, "export_client_cert", "not usable PEM"),
])
def test_a_client_certificate_and_key_that_do_not_go_together_are_a_config_error(
        options: dict[str, object], setting: str, why: str, source: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(source, options)
    message = str(raised.value)
    assert f"setting '{setting}'" in message and why in message
    assert ("keyword argument" if source == "keyword" else _VARIABLES[setting]) in message
    assert "PRIVATE KEY" not in message


def test_an_encrypted_key_in_the_certificate_file_is_refused_not_prompted_for(tmp_path: Path) -> None:
    both = tmp_path / "client-and-encrypted-key.pem"
    both.write_bytes(CLIENT_CERT.read_bytes() + (CERTS / "client-key-encrypted.pem").read_bytes())
    with pytest.raises(ConfigError, match=r"setting 'export_client_cert' \(from keyword argument\): .*encrypted"):
        _load("keyword", {"export_client_cert": both})


def test_install_refuses_a_bad_file_and_keeps_the_running_install(tls_rx: OtlpReceiver, tmp_path: Path) -> None:
    install_default_tenant(tls_rx, "tls", export_ca_file=CA)
    running = state.settings
    with pytest.raises(ConfigError, match=r"setting 'export_ca_file' \(from keyword argument\): .*cannot be read"):
        install_default_tenant(tls_rx, "tls", export_ca_file=tmp_path / "missing.pem")
    assert state.settings is running
    _export(1)
    assert len(tls_rx.wait_for_spans(1)) == 1


def test_files_are_read_only_when_exporting_but_paths_are_always_checked(tmp_path: Path) -> None:
    settings = load_settings({"export_ca_file": tmp_path / "missing.pem"}, env={})  # no Langfuse: never read
    assert settings.export_ca_file == tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match=r"setting 'export_client_key' \(from AUTOTRACE_EXPORT_CLIENT_KEY\)"):
        load_settings(env={"AUTOTRACE_EXPORT_CLIENT_KEY": str(CLIENT_KEY)})
    with pytest.raises(ConfigError, match=r"setting 'export_ca_file' \(from keyword argument\): must be a file's path"):
        load_settings({"export_ca_file": 42}, env={})


def test_a_context_that_cannot_be_made_after_install_fails_exports_counted_never_the_app(
        tls_rx: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that breaks between install's check and the context (simulated by skipping the check)."""
    monkeypatch.setattr(tls_module, "check_files", lambda settings: None)
    garbage = _bad_files(tmp_path)["garbage"]
    install_default_tenant(tls_rx, "tls", export_ca_file=garbage, max_retries=0)
    assert _export(1) == 42
    _assert_failed_counted(tls_rx)
    assert autotrace.stats()["internal_errors.export_tls"] == 1
    assert tls_rx.requests == []


# -- one context ----------------------------------------------------------------------------------------------
def test_every_destination_shares_the_install_s_one_context(tls_rx: OtlpReceiver) -> None:
    keys = {t: {"public_key": f"pk-lf-{t}", "secret_key": f"sk-lf-{t}"} for t in ("acme", "globex")}
    autotrace.install(langfuse_host=tls_rx.endpoint, credentials=keys, integrations=(), export_interval=30.0,
                      export_ca_file=CA)
    for tenant in keys:
        with autotrace.tenant(tenant), autotrace.start_span(f"{tenant}-span"):
            pass
    assert autotrace.flush(10)
    assert len(tls_rx.wait_for_spans(2)) == 2
    router = state.pipeline.router if state.pipeline is not None else None
    assert router is not None and isinstance(router.connections.tls(), ssl.SSLContext)
    sinks = [d.sink for d in router.destinations() if isinstance(d.sink, LangfuseSink)]
    assert sorted(s.name for s in sinks) == ["langfuse:acme", "langfuse:globex"]
    targets = [target for sink in sinks for target in sink.targets()]
    assert len(targets) == 4 and all(target.pool is router.connections for target in targets)
    contexts = {id(target.new_connection()._context) for target in targets}  # type: ignore[union-attr]
    assert contexts == {id(router.connections.tls())}


def test_a_target_without_a_context_makes_one_once_for_all_its_connections(
        tls_rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(CA))
    target = HttpTarget(tls_rx.endpoint + "/api/public/otel/v1/traces", timeout=5.0)
    contexts = [target.new_connection()._context for _ in range(3)]  # type: ignore[union-attr]
    assert contexts[0] is contexts[1] is contexts[2] is target.pool.tls()
