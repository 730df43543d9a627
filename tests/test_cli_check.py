"""``autotrace check``: each configured key pair (the default keys, each tenant's) tried as exports
would try it, against a loopback Langfuse stand-in (``OtlpReceiver``) over real sockets: an empty
OTLP export request with the export's headers, then the projects API for the project's name;
through the export's proxy and TLS settings. Secrets never reach the output."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from autotrace import cli
from autotrace.export.credentials import ChainCredentials, EnvCredentials, StaticCredentials
from autotrace.export.credentials_file import FileCredentials
from autotrace.export.key_check import KeyCheck, sharing_a_project
from autotrace.export.otlp_http import exchange
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import CERTS, basic_auth, server_tls
from tests.proxy_server import ProxyServer

GOOD = ("pk-lf-acme", "sk-lf-acme-s3cret")
SECRETS = ("s3cret", base64.b64encode(b"pk-lf-acme:sk-lf-acme-s3cret").decode())



@pytest.fixture
def langfuse(rx: OtlpReceiver) -> OtlpReceiver:
    """A stand-in Langfuse that takes only the ``GOOD`` keys and names their project."""
    rx.require_auth(basic_auth(*GOOD))
    rx.projects[GOOD[0]] = {"name": "Acme production", "id": "cl-acme-1"}
    return rx


def _tenant(monkeypatch: pytest.MonkeyPatch, name: str, public: str, secret: str, host: str | None = None) -> None:
    prefix = f"AUTOTRACE_TENANT_{name.upper()}_"
    monkeypatch.setenv(prefix + "PUBLIC_KEY", public)
    monkeypatch.setenv(prefix + "SECRET_KEY", secret)
    if host is not None:
        monkeypatch.setenv(prefix + "HOST", host)


def _check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["check", *args])
    captured = capsys.readouterr()
    for secret in SECRETS:
        assert secret not in captured.out + captured.err
    return code, captured.out, captured.err


def test_each_tenant_is_tried_as_exports_would_and_named_by_its_project(
        langfuse: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LANGFUSE_HOST", langfuse.url)
    _tenant(monkeypatch, "acme", *GOOD)
    _tenant(monkeypatch, "globex", "pk-lf-globex", "sk-lf-wrong")
    code, text, _ = _check(capsys)
    assert code == 1
    assert text.splitlines() == [
        f'ok          acme    {langfuse.url} (key pk-lf-acme): project "Acme production" (cl-acme-1), spans accepted',
        f"refused     globex  {langfuse.url} (key pk-lf-globex): HTTP 401: Langfuse did not accept these keys",
        "1 ok, 1 refused",
    ]
    traces = [r for r in langfuse.requests if r.path == "/api/public/otel/v1/traces"]  # the accepted one
    assert [(r.span_count, r.body) for r in traces] == [(0, b"")]  # nothing to store
    sent = traces[0].headers
    assert (sent["authorization"], sent["x-langfuse-public-key"]) == (basic_auth(*GOOD), GOOD[0])
    assert sent["x-langfuse-ingestion-version"] == "4"
    assert (sent["content-type"], sent["content-encoding"]) == ("application/x-protobuf", "gzip")
    projects = [r for r in langfuse.requests if r.path == "/api/public/projects"]
    assert [r.headers["authorization"] for r in projects] == [basic_auth(*GOOD)]  # refused keys are not asked again


def test_json_output_names_every_outcome(
        langfuse: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LANGFUSE_HOST", langfuse.url)
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", GOOD[0])
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", GOOD[1])
    _tenant(monkeypatch, "down", "pk-lf-down", "sk-lf-down", host="http://127.0.0.1:9")
    code, text, _ = _check(capsys, "--json", "--tenant", "down", "--tenant", "nobody", "--tenant", "down")
    assert code == 1
    report = json.loads(text)
    assert [(c["name"], c["outcome"]) for c in report["checks"]] == [("down", "unreachable"), ("nobody", "missing")]
    assert report["checks"][0]["detail"] == "nothing listens on that port (ConnectionRefusedError)"
    assert report["checks"][1] == {"name": "nobody", "outcome": "missing", "detail": "no keys found for this tenant",
                                   "host": None, "public_key": None, "proxy": None, "project": None,
                                   "project_id": None}
    assert (report["ok"], report["not_checked"], report["shared_projects"]) == (False, 0, [])
    assert langfuse.requests == []  # named tenants only: the default keys are not tried


def test_all_accepted_exits_zero_and_keys_shared_between_tenants_are_a_warning(
        langfuse: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LANGFUSE_HOST", langfuse.url)
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", GOOD[0])
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", GOOD[1])
    _tenant(monkeypatch, "acme", *GOOD)
    code, text, _ = _check(capsys)
    assert code == 0
    lines = text.splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [["ok", "default"], ["ok", "acme"]]
    assert lines[2:] == ["warning: default, acme send to the same Langfuse project: each tenant's traces belong "
                         "in a project of its own", "2 ok"]


def test_a_project_is_shared_by_its_id_or_by_the_same_public_key_on_the_same_host() -> None:
    def ok(name: str, host: str, key: str, project_id: str | None) -> KeyCheck:
        return KeyCheck(name, "ok", "", host, key, project_id=project_id)

    checks = [ok("a", "h1", "pk-1", "p1"), ok("b", "h1", "pk-2", "p1"), ok("c", "h2", "pk-3", "p1"),
              ok("d", "h1", "pk-4", None), ok("e", "h1", "pk-4", None), KeyCheck("f", "refused", "", "h1", "pk-2")]
    assert sharing_a_project(checks) == [["a", "b"], ["d", "e"]]


def test_endpoint_failures_are_told_apart(
        rx: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LANGFUSE_HOST", rx.url + "/not-langfuse")
    _tenant(monkeypatch, "acme", *GOOD)
    code, text, _ = _check(capsys)
    assert (code, text.splitlines()[0].split(": ", 1)[1]) == (1, "HTTP 404: no OTLP endpoint at "
                                                                "/api/public/otel/v1/traces on this host")
    monkeypatch.setenv("LANGFUSE_HOST", rx.url)
    rx.fail_with(403)
    assert _check(capsys)[1].startswith("refused ")
    rx.fail_with(503)
    code, text, _ = _check(capsys)
    assert (code, text.splitlines()[0].split()[0], text.splitlines()[0].endswith(": HTTP 503")) == (1, "failed", True)
    rx.fail_with(None)
    assert _check(capsys)[0] == 0  # no project named: still accepted
    assert rx.requests[-1].path == "/api/public/projects"


def test_network_failures_are_said_in_plain_words(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    silent = socket.create_server(("127.0.0.1", 0))  # takes connections, never answers
    try:
        monkeypatch.setenv("LANGFUSE_HOST", f"http://127.0.0.1:{port}")
        _tenant(monkeypatch, "refused", *GOOD)
        _tenant(monkeypatch, "silent", *GOOD, host=f"http://127.0.0.1:{silent.getsockname()[1]}")
        code, text, _ = _check(capsys, "--timeout", "0.3")
    finally:
        silent.close()
    lines = [line.split(": ", 1)[1] for line in text.splitlines()[:2]]
    assert (code, lines, text.splitlines()[2]) == (
        1, ["nothing listens on that port (ConnectionRefusedError)", "no answer within the timeout (TimeoutError)"],
        "2 unreachable")


def test_through_the_export_proxy_and_tls_settings(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with OtlpReceiver(tls=server_tls()) as tls_rx, ProxyServer() as proxy:
        tls_rx.projects[GOOD[0]] = {"name": "Acme", "id": "cl-1"}
        monkeypatch.setenv("LANGFUSE_HOST", tls_rx.url)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        _tenant(monkeypatch, "acme", *GOOD)
        code, text, _ = _check(capsys)  # the test CA is not trusted yet
        assert code == 1 and text.splitlines()[0] == (
            f"unreachable acme  {tls_rx.url} (key pk-lf-acme, via proxy 127.0.0.1:{proxy.port}): its TLS "
            "certificate is not trusted (see AUTOTRACE_EXPORT_CA_FILE) (SSLCertVerificationError)")
        monkeypatch.setenv("AUTOTRACE_EXPORT_CA_FILE", str(CERTS / "ca.pem"))
        code, text, _ = _check(capsys)
        assert code == 0
        assert text.splitlines()[0] == (f"ok          acme  {tls_rx.url} (key pk-lf-acme, via proxy 127.0.0.1:"
                                        f'{proxy.port}): project "Acme" (cl-1), spans accepted')
        assert {line.split()[0] for line in proxy.lines} == {"CONNECT"}


def test_nothing_to_check_is_said_and_fails(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                            rx: OtlpReceiver) -> None:
    code, _, err = _check(capsys)
    assert code == 1 and "nothing to check: no Langfuse is configured" in err
    monkeypatch.setenv("LANGFUSE_HOST", rx.url)
    code, out, err = _check(capsys, "--json")
    assert code == 1 and "name tenants with --tenant" in err
    assert json.loads(out)["error"]["kind"] == "no_data"
    assert rx.requests == []


def test_a_bad_timeout_or_setting_is_a_usage_or_config_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(capsys, "--timeout", "0")[0] == 2
    monkeypatch.setenv("LANGFUSE_HOST", "ftp://nowhere")
    code, _, err = _check(capsys)
    assert code == 2 and "setting 'langfuse_host'" in err


def test_listed_tenants_come_from_every_listing_resolver(tmp_path: Path) -> None:
    env = {"AUTOTRACE_TENANT_ACME_PUBLIC_KEY": "pk", "AUTOTRACE_TENANT_ACME_SECRET_KEY": "sk",
           "AUTOTRACE_TENANT_ACME_CORP_PUBLIC_KEY": "pk", "AUTOTRACE_TENANT_ACME_CORP_SECRET_KEY": "sk",
           "AUTOTRACE_TENANT_ACME_CORP_ID": "acme.corp",
           "AUTOTRACE_TENANT_HALF_PUBLIC_KEY": "pk",  # no secret: not listed
           "AUTOTRACE_TENANT__PUBLIC_KEY": "pk", "AUTOTRACE_TENANT__SECRET_KEY": "sk"}  # no name
    environ_resolver = EnvCredentials(environ=env)
    assert sorted(environ_resolver.known_tenants()) == ["acme", "acme.corp"]
    assert all(environ_resolver.resolve(t) is not None for t in environ_resolver.known_tenants())
    path = tmp_path / "tenants.toml"
    path.write_text('[tenants.globex]\npublic_key = "pk"\nsecret_key = "sk"\n'
                    '[tenants.unset]\npublic_key = "pk"\nsecret_key_env = "NOT_SET_ANYWHERE"\n')
    chain = ChainCredentials(FileCredentials(path, environ={}), environ_resolver, StaticCredentials({"acme": GOOD}),
                             lambda tenant: None)
    assert chain.known_tenants() == ["globex", "acme", "acme.corp"]


def test_get_sends_no_body_and_the_exchange_reads_the_answer(rx: OtlpReceiver) -> None:
    import http.client
    import time

    conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=5)
    rx.projects["pk"] = {"name": "P"}
    status, _, body = exchange(conn, "/api/public/projects", b"", {"Authorization": basic_auth("pk", "sk")},
                               time.monotonic() + 5, method="GET")
    conn.close()
    assert status == 200 and json.loads(body)["data"][0]["name"] == "P"
    assert rx.requests[0].body == b"" and rx.requests[0].headers.get("content-length") == "0"


@pytest.fixture
def many_tenants(langfuse: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    monkeypatch.setenv("LANGFUSE_HOST", langfuse.url)
    monkeypatch.setattr("autotrace.commands.MAX_LISTED_TENANTS", 3)
    for n in range(5):
        _tenant(monkeypatch, f"t{n}", *GOOD)
    yield langfuse


def test_listed_tenants_are_bounded_and_the_rest_counted(
        many_tenants: OtlpReceiver, capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _ = _check(capsys)
    lines = text.splitlines()
    assert [line.split()[1] for line in lines[:3]] == ["t0", "t1", "t2"]
    assert lines[-1] == "3 ok; 2 more tenants not checked (name them with --tenant)"
    assert code == 0
