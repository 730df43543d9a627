"""Review 20: secrets a tool's arguments or an error message carry that were exported raw: an ODBC or
MySQL connection string's ``Pwd=``, an Azure Storage connection string's ``AccountKey=``, a signed
URL's signature (Azure SAS ``sig=``, S3 ``X-Amz-Signature=``, GCS ``X-Goog-Signature=``: each grants
access until it expires), a Google OAuth client secret (``GOCSPX-``) and access token (``ya29.``).
A working directory (``PWD=/home/app``) and code (``sig = inspect.signature(f)``) stay."""

from __future__ import annotations

import json

import pytest

from autotrace.export.detectors import redact_text

_SAS = "sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-01-01T00:00:00Z&sig=q0Zp3%2BxYkL9mQ2vR7tU1wA8bC4dE6fG%3D"
_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_GOOGLE = "ya29.a0AfB_byC3kL9mQ2vR7tU1wA8bC4dE6fGhIjKlMnOpQrStUvWxYz0123456789"


@pytest.mark.parametrize(("text", "expected"), [
    ("Driver={ODBC Driver 18 for SQL Server};Server=tcp:db.example.net,1433;Uid=app;Pwd=S3cr3t-Pass!;Encrypt=yes",
     "Driver={ODBC Driver 18 for SQL Server};Server=tcp:db.example.net,1433;Uid=app;Pwd=<API_KEY>;Encrypt=yes"),
    ("DRIVER={SQL Server};SERVER=db;UID=sa;PWD=hunter2xyz;", "DRIVER={SQL Server};SERVER=db;UID=sa;PWD=<API_KEY>;"),
    (f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={_KEY};EndpointSuffix=core.windows.net",
     "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=<API_KEY>;EndpointSuffix=core.windows.net"),
    (f"GET https://acct.blob.core.windows.net/c/report.pdf?{_SAS} 403",
     f"GET https://acct.blob.core.windows.net/c/report.pdf?{_SAS.split('sig=')[0]}sig=<API_KEY> 403"),
    ("https://b.s3.amazonaws.com/k.csv?X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=" + "ab12" * 16,
     "https://b.s3.amazonaws.com/k.csv?X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=<API_KEY>"),
    ("https://storage.googleapis.com/b/o?X-Goog-Expires=900&X-Goog-Signature=" + "9f3c" * 16,
     "https://storage.googleapis.com/b/o?X-Goog-Expires=900&X-Goog-Signature=<API_KEY>"),
    ("my client secret is 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", "my client secret is <API_KEY>"),
    (f"retrying with {_GOOGLE}.", "retrying with <API_KEY>."),
    (json.dumps({"cmd": f'curl -H "X-Goog-User-Project: p" -d t={_GOOGLE} https://x'}),
     json.dumps({"cmd": 'curl -H "X-Goog-User-Project: p" -d t=<API_KEY> https://x'})),
])
def test_connection_string_and_cloud_secrets_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize("text", [
    "PWD=/home/app OLDPWD=/tmp HOME=/root", '{"PWD": "/workspace/project"}', "set PWD=C:\\apps\\x",
    "sig = inspect.signature(func)", "signature=inspect.signature(func)", "The design: significant signal=12345678",
    "version 1.29.0 of ya29.short", "Cookie: d-s=1700000000; theme=dark; lang=en-US",
])
def test_paths_code_and_prose_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("GET /me HTTP/1.1\r\nCookie: sessionid=8f2kd93jf0s9dk3l; theme=dark\r\n",
     "GET /me HTTP/1.1\r\nCookie: sessionid=<API_KEY>; theme=dark\r\n"),
    (json.dumps({"headers": {"cookie": "_session=s%3Aabc123def456.xyz"}}),
     json.dumps({"headers": {"cookie": "_session=<API_KEY>"}})),
    ("Set-Cookie: sid=8f2kd93jf0s9dk3l; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly",
     "Set-Cookie: sid=<API_KEY>; Path=/; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly"),
    (str({"Cookie": "JSESSIONID=A1B2C3D4E5F6"}), str({"Cookie": "JSESSIONID=<API_KEY>"})),
])
def test_a_cookie_header_s_session_values_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)
