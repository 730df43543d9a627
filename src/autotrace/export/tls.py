"""The TLS context of export connections: the system CAs, plus ``export_ca_file`` (a private CA's
bundle), plus ``export_client_cert``/``export_client_key`` (mutual TLS). One per install, shared
by every connection the router makes."""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from ..config import Settings

#: What ``ssl.SSLError``'s text adds to OpenSSL's reason: the library and CPython's source line.
_SSL_NOISE = re.compile(r"^\[\w+\]\s*|\s*\(_ssl\.c:\d+\)$")


class TlsFileError(ValueError):
    """A TLS file that cannot be used; ``setting`` names the setting (never the file's content)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


class _EncryptedKey(ValueError):
    """The client key is encrypted (there is no password setting)."""


def _no_password() -> NoReturn:
    """Refuse an encrypted key: OpenSSL would otherwise prompt for its password on the terminal."""
    raise _EncryptedKey


def _why(exc: Exception) -> str:
    """What went wrong reading a file: OpenSSL's reason or the OS error's name, never the content."""
    if isinstance(exc, ssl.SSLError):  # "[SSL] PEM lib (_ssl.c:3926)": OpenSSL's reason alone
        return f"not usable PEM ({exc.reason or _SSL_NOISE.sub('', exc.strerror or '') or 'SSLError'})"
    return f"cannot be read ({type(exc).__name__})"


def load_files(context: ssl.SSLContext, ca_file: Path | None, cert: Path | None, key: Path | None) -> None:
    """Load the CA bundle (added to what ``context`` trusts) and the client certificate into
    ``context``; a file that cannot be used raises ``TlsFileError`` naming its setting."""
    if key is not None and cert is None:
        raise TlsFileError("export_client_key", "is set without export_client_cert")
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise TlsFileError("export_ca_file", f"{ca_file}: {_why(exc)}") from None
    if cert is not None:
        _load_cert_chain(context, cert, key)


def _load_cert_chain(context: ssl.SSLContext, cert: Path, key: Path | None) -> None:
    """The client certificate and its key; a failure is blamed on the file that caused it."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=cert)  # holds a certificate?
    except (OSError, ValueError) as exc:
        raise TlsFileError("export_client_cert", f"{cert}: {_why(exc)}") from None
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except _EncryptedKey:
        raise TlsFileError("export_client_key" if key else "export_client_cert",
                           f"{key or cert}: the private key is encrypted (an unencrypted one is needed)") from None
    except (OSError, ValueError) as exc:
        if key is None:
            raise TlsFileError("export_client_cert", f"{cert}: holds no private key for its certificate "
                               f"(set export_client_key) or {_why(exc)}") from None
        raise TlsFileError("export_client_key", f"{key}: not the private key of export_client_cert, or "
                           f"{_why(exc)}") from None


def check_files(settings: Settings) -> None:
    """Read the TLS files of ``settings`` as an export would (into a context without the system
    CAs: cheap), raising ``TlsFileError`` for the first that cannot be used."""
    load_files(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), settings.export_ca_file, settings.export_client_cert,
               settings.export_client_key)


def export_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context of export connections: the system CAs (``create_default_context``), then the
    settings' CA bundle and client certificate. Raises when a file cannot be used."""
    context = ssl.create_default_context()
    load_files(context, settings.export_ca_file, settings.export_client_cert, settings.export_client_key)
    return context
