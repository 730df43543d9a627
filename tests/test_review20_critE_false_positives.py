"""Review 20 (critic E): ordinary trace content today's redaction rules destroyed. A working directory
named in code or prose (``pwd: current working directory``, ``old_pwd = current_dir``), a query
parameter named ``sig`` holding a word (``&sig=thumbnail``), a Docker port mapping after a container
named ``mysql`` (``-p3306:3306``) were replaced by ``<API_KEY>``; a JSON key ending in a secret's name
and its separator (``{"Enter password:": [1, 2]}``) had the rest of its object taken as a value,
leaving no JSON. Each rule still finds the secrets it is for."""

from __future__ import annotations

import json

import pytest

from autotrace.export.detectors import redact_text


@pytest.mark.parametrize("text", [
    "pwd: current working directory",
    "old_pwd = current_dir",
    "pwd = pathlib.Path('.').resolve()",
    "https://cdn.example.com/img.png?w=200&sig=thumbnail",
    "https://example.com/?signature=yes_please",
    "docker run --name mysql -p3306:3306 mysql:8",
    "docker run --name mariadb -p127.0.0.1:3306:3306/tcp mariadb",
    "docker run mysql -e LANG=C -p8080:80",
])
def test_ordinary_content_kept(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize("text", [
    '{"Enter password:": [1, 2, 3], "k": "value"}',
    '{"Enter password:": 4111, "k": "value"}',
    '{"x password:": [1, 2, 3]}',
    '{"set token=": [1, 2], "k": "v"}',
])
def test_json_key_ending_in_a_separator_stays_json(text: str) -> None:
    out, _ = redact_text(text)
    assert out == text
    assert json.loads(out) == json.loads(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("Server=x;Uid=sa;Pwd=Hunter22!;", "Server=x;Uid=sa;Pwd=<API_KEY>;"),
    ('{"pwd": "Hunter22x"}', '{"pwd": "<API_KEY>"}'),
    ('pwd = "Hunter22x"', 'pwd = "<API_KEY>"'),
    ("DB_PWD=Hunter22x", "DB_PWD=<API_KEY>"),
    ("https://a.blob.core.windows.net/c/b?sv=2022-11-02&sig=AbCdEf%2BGhIj0123456789abcdefghijkl%3D",
     "https://a.blob.core.windows.net/c/b?sv=2022-11-02&sig=<API_KEY>"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Signature=" + "ab12" * 16, "https://b.s3.amazonaws.com/k?X-Amz-Signature=<API_KEY>"),
    ("mysql -uroot -pHunter22x -h db", "mysql -uroot -p<API_KEY> -h db"),
    ("mysql -u root -p123456 shop", "mysql -u root -p<API_KEY> shop"),
    ('{"password": "=Hunter22x"}', '{"password": "<API_KEY>"}'),
])
def test_secrets_still_found(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", ["mysql -u root -p<password> shop", "mysql -uroot -p<API_KEY> shop"])
def test_placeholder_after_mysql_p_is_no_password(text: str) -> None:
    """A placeholder glued to ``-p`` (a document's ``<password>``, or one a first redaction wrote) was
    replaced by itself and counted: a second redaction of redacted text counted a value more."""
    assert redact_text(text) == (text, 0)
