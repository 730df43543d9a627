"""What autotrace itself writes outside the export path (review 17): error messages, log lines and
the CLI's stderr never quote a secret or a value the application passed by mistake."""

from __future__ import annotations

import functools
import logging
import subprocess
import sys
from pathlib import Path

import pytest

import autotrace
from autotrace.export.credentials import Credentials, CredentialsError, LookupFailed
from autotrace.export.credentials_file import FileCredentials
from autotrace.export.otlp_http import HttpTarget
from autotrace.export.redaction import Redactor
from tests.helpers import isolated_env

#: A Langfuse host with a user and a password whose ``/`` (not percent-encoded) ends the URL's
#: authority early: ``urlsplit`` then reads the password as the port.
_HOST = "https://lf-user:s3cr3tpw/x@lf.example.com"
_PORT = "its port is not a number from 0 to 65535; a / ? or # in a password must be percent-encoded"


def test_a_host_whose_password_holds_a_slash_is_refused_by_the_cli_without_quoting_it(tmp_path: Path) -> None:
    """``autotrace info`` with such a ``LANGFUSE_HOST`` says why, masked. Before: its stderr ended
    with ``(Port could not be cast to integer value as 's3cr3tpw')``."""
    env = isolated_env(tmp_path, LANGFUSE_HOST=_HOST, LANGFUSE_PUBLIC_KEY="pk-lf-1", LANGFUSE_SECRET_KEY="sk-lf-2")
    done = subprocess.run([sys.executable, "-m", "autotrace", "info"], capture_output=True, text=True,
                          timeout=120, env=env, check=False)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == ("autotrace: setting 'langfuse_host': must be an http(s) URL such as "
                           f"https://langfuse.example.com, got 'https://***@lf.example.com' ({_PORT}) "
                           "(from LANGFUSE_HOST)\n")


def test_a_tenants_host_whose_password_holds_a_slash_is_logged_and_refused_without_quoting_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A tenant's ``host`` in a credentials file: the log line and the error name the problem, not
    the password. Before: both held ``s3cr3tpw``."""
    path = tmp_path / "tenants.toml"
    path.write_text(f'[tenants.acme]\npublic_key = "pk-lf-1"\nsecret_key = "sk-lf-2"\nhost = "{_HOST}"\n')
    with caplog.at_level(logging.WARNING, logger="autotrace"), pytest.raises(LookupFailed):
        FileCredentials(path).resolve("acme")
    assert caplog.messages == [
        f"autotrace: keys of tenant 'acme' in {path} are invalid (host 'https://***@lf.example.com' must be an "
        f"http(s) URL of a Langfuse: {_PORT}); that tenant is not exported"]
    with pytest.raises(CredentialsError) as refused:
        Credentials("pk-lf-1", "sk-lf-2", "https://u:pa?ss#word@lf.example.com")
    assert str(refused.value) == f"host 'https://***@lf.example.com' must be an http(s) URL of a Langfuse: {_PORT}"


def test_an_export_target_with_such_a_url_names_its_problem_without_the_password() -> None:
    """An export URL is refused as it is read (``problem``, a destination's failure reason, logged).
    Before: ``invalid URL (Port could not be cast to integer value as 's3cr3tpw')``."""
    assert HttpTarget(_HOST + "/api/public/otel/v1/traces", 1.0).problem == f"invalid URL ({_PORT})"


@pytest.mark.parametrize(("value", "why"), [
    ("john.doe+vip@example.com", "character 9 of 24, '+', is not allowed there"),
    ("Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "character 7 of 39, ' ', is not allowed there"),
    ("_acme", "character 1 of 5, '_', is not allowed there"),
    ("a" * 5000, "5000 characters"),
    ("", "0 characters"),
    (42, "not a str but int"),
])
def test_an_invalid_tenant_id_is_refused_without_quoting_it(value: object, why: str) -> None:
    """A value passed as the tenant by mistake (a user's e-mail address, an Authorization header, a
    whole request body) reaches the application's error log in the ``ValueError``: it says what is
    wrong, never the value. Before: the value's repr, whole, whatever its length."""
    expected = f"invalid tenant id ({why}): use 1-128 characters of [A-Za-z0-9._:@/-], the first a letter or digit"
    with pytest.raises(ValueError) as refused:
        autotrace.set_tenant(value)  # type: ignore[arg-type]
    assert str(refused.value) == expected
    with pytest.raises(ValueError) as refused, autotrace.tenant(value):  # type: ignore[arg-type]
        pass
    assert str(refused.value) == expected


class _NameMasker:
    """A redaction hook holding the names it removes (shown by its dataclass-like repr)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def __repr__(self) -> str:
        return f"_NameMasker(names={self.names!r})"

    def __call__(self, key: str, value: object, span_type: str) -> object:
        raise RuntimeError("bug")


def _mask(key: str, value: object, span_type: str, names: tuple[str, ...] = ()) -> object:
    raise RuntimeError("bug")


@pytest.mark.parametrize(("hook", "shown"), [
    (_NameMasker(["Jane Roe", "John Smith"]), "_NameMasker"),
    (functools.partial(_mask, names=("Jane Roe", "John Smith")), "partial"),
    (_mask, "_mask"),
])
def test_a_failing_redaction_hook_is_named_without_its_repr(
        hook: object, shown: str, caplog: pytest.LogCaptureFixture) -> None:
    """The warning names the hook by its qualified name (its type's for a callable object or a
    ``partial``). Before: by its repr, which printed the personal names it was given to remove."""
    with caplog.at_level(logging.WARNING, logger="autotrace"):
        value = Redactor(hooks=[hook]).redact_value("langfuse.observation.input", "hi", "span")  # type: ignore[list-item]
    assert value == "<REDACTION_FAILED>"
    assert caplog.messages == [f"autotrace: redaction hook {shown!r} raised RuntimeError; the affected values are "
                               "replaced, never exported raw"]
