"""Privacy review: passwords in URLs, ``secret_key``/``private_key`` assignments, addresses with
full-width or ideographic dots, phone words of Spanish, Portuguese, Italian and Dutch, and a run of
escaped "@" read once; each checked on ``redact_text`` and through the export path into the local store."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

import autotrace
from autotrace.export.detectors import _LABEL, redact_text


@pytest.mark.parametrize(("text", "expected"), [
    ("DATABASE_URL=postgres://app:hunter2hunter2@10.0.0.5/db", "DATABASE_URL=postgres://app:<API_KEY>@<IP_ADDRESS>/db"),
    ("redis://:p4ssw0rd123@cache:6379/0", "redis://:<API_KEY>@cache:6379/0"),
    ("amqp://guest:Gu3st-pw@rabbit:5672/", "amqp://guest:<API_KEY>@rabbit:5672/"),
    ("postgresql://user:pa%40ss@localhost:5432/db", "postgresql://user:<API_KEY>@localhost:5432/db"),
    ("mongodb+srv://admin:p@ss!@cluster0.abcde.mongodb.net/test", "mongodb+srv://admin:<API_KEY>@cluster0.abcde.mongodb.net/test"),
    # the host stays (it read as the domain of an address ending in the password)
    ("https://admin:S3cretP4ss@db.example.com:5432/app", "https://admin:<API_KEY>@db.example.com:5432/app"),
    (json.dumps({"dsn": "mysql://root:t0ps3cr3t@db:3306/x"}), '{"dsn": "mysql://root:<API_KEY>@db:3306/x"}'),
    ('{"dsn":"mysql:\\/\\/root:t0ps3cr3t@db:3306\\/x"}', '{"dsn":"mysql:\\/\\/root:<API_KEY>@db:3306\\/x"}'),
])
def test_the_password_of_a_url_is_redacted_and_its_user_and_host_kept(text: str, expected: str) -> None:
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize("text", [
    "clone ssh://deploy@build-host:22/srv/repo.git", "see http://host:8080/path or write to a b",
    "http://example.com:80 and https://example.org/?q=a:b", "user@host:/srv/data",
    # templates in code a model writes: no password yet
    'url = f"postgresql://{DB_USER}:{DB_PASS}@{DB_HOST}/{DB_NAME}"', "postgres://${PGUSER}:${PGPASSWORD}@db:5432/app",
    "redis://:$REDIS_PASSWORD@cache", '"mysql://%s:%s@%s/%s" % (user, pw, host, db)', "amqp://u:%(password)s@mq",
])
def test_urls_without_a_password_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("SECRET_KEY=django-insecure-abcdefghijklmnop", "SECRET_KEY=<API_KEY>"),
    ('secret_key = "abc123def456"', 'secret_key = "<API_KEY>"'),
    (json.dumps({"secretKey": "wJalrXUtnFEMI"}), '{"secretKey": "<API_KEY>"}'),
    ("private_key: abcdefg1234567", "private_key: <API_KEY>"),
    ("WALLET_PRIVATE-KEY=0x4c0883a69102937d6231471b5dbb6204fe512961", "WALLET_PRIVATE-KEY=<API_KEY>"),
    ("cl\u00e9: secret_key=abcdefg1234567", "cl\u00e9: secret_key=<API_KEY>"),  # (other than ASCII text)
])
def test_secret_key_and_private_key_assignments_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize(("text", "expected"), [
    # typed with an IME in full-width mode: its dots are full-width as its "@" is
    ("\u30e1\u30fc\u30eb\uff1a\uff4a\uff41\uff4e\uff45\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",
     "\u30e1\u30fc\u30eb\uff1a<EMAIL>"),
    ("to \uff54\uff41\uff52\uff4f\uff0e\uff59\uff41\uff4d\uff41\uff44\uff41\uff20\uff45\uff58\uff0e\uff43\uff4f\uff0e\uff4a\uff50 ok",
     "to <EMAIL> ok"),
    ("mail jane@example\u3002com", "mail <EMAIL>"),  # an ideographic full stop: a dot to IDNA
    ("mail jane@example\uff61co\uff61jp", "mail <EMAIL>"),
    (json.dumps({"to": "jane@example\u3002com"}), '{"to": "<EMAIL>"}'),
    (json.dumps({"to": "\uff4a\uff41\uff4e\uff45\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d"}),
     '{"to": "<EMAIL>"}'),
    # a full stop ending a sentence is not the address's
    ("\u9023\u7d61\uff1ajane@example.com\u3002\u3088\u308d\u3057\u304f", "\u9023\u7d61\uff1a<EMAIL>\u3002\u3088\u308d\u3057\u304f"),
])
def test_addresses_with_full_width_or_ideographic_dots_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize("text", ["\u6587\u3002\u30e1\u30fc\u30eb\u3002", "a@b\u3002c", "ver 1\uff0e2\uff0e3", "x\uff0ey"])
def test_ideographic_and_full_width_stops_alone_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("Tel\u00e9fono: 55 1234 5678", "Tel\u00e9fono: <PHONE>"),
    ("Telefone: (11) 98765-4321", "Telefone: <PHONE>"),
    ("Celular: 11 98765 4321", "Celular: <PHONE>"),
    ("cellulare: 333 123 4567", "cellulare: <PHONE>"),
    ("Telefoon: 6 12345678", "Telefoon: <PHONE>"),
    ("m\u00f3vil 612345678", "m\u00f3vil <PHONE>"),
    (json.dumps("Tel\u00e9fono: 55 1234 5678"), '"Tel\\u00e9fono: <PHONE>"'),
    (json.dumps("M\u00f3vil: 612345678"), '"M\\u00f3vil: <PHONE>"'),
])
def test_numbers_named_by_a_phone_word_of_other_languages_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize("text", ["telefon\u00eda 2024 ventas 1234567", "Celular modelo 2023, precio 1999"])
def test_phone_words_of_other_languages_near_other_numbers_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_a_domain_never_reads_through_an_escaped_at() -> None:
    # a label taking "\u0040" read from each escaped "@" of a run to its end: quadratic (a 16 kB run
    # of them took 0.4 s, a megabyte most of half an hour)
    for escaped_at in ("\\u0040", "\\uff20", "\\uFF20"):
        assert re.fullmatch(_LABEL, f"example{escaped_at}com") is None
    assert re.fullmatch(_LABEL, "jos\\u00e9") is not None
    assert redact_text("a\\u0040b\\u0040example.com") == ("<EMAIL>", 1)
    run = "a\\u0040" * 5000
    assert redact_text(run) == (run, 0)


def _stored(path: Path) -> bytes:
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute("select name from sqlite_master where type='table'")]
        return repr([list(db.execute(f"select * from {table}")) for table in tables]).encode()


def test_url_passwords_secret_keys_wide_addresses_and_named_phones_never_reach_the_local_store(tmp_path: Path) -> None:
    planted = {
        "dsn": "postgres://app:hunter2hunter2@10.0.0.5/db",
        "env": "SECRET_KEY=django-insecure-abcdefghijklmnop",
        "wide": "\uff4a\uff41\uff4e\uff45\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",
        "ideographic": "jane@example\u3002com",
        "phone": "Tel\u00e9fono: 55 1234 5678",
    }
    fragments = ["hunter2hunter2", "django-insecure", "\uff4a\uff41\uff4e\uff45", "jane@", "1234 5678",
                 "\\uff4a\\uff41\\uff4e\\uff45"]
    path = tmp_path / "t.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=(), export_interval=0.05)
    with autotrace.start_tool("connect", arguments=planted) as tool:
        tool.update(result=" / ".join(planted.values()))
    assert autotrace.flush(10)
    stored = _stored(path)
    for fragment in fragments:
        assert fragment.encode() not in stored, fragment
        assert fragment.encode("unicode_escape") not in stored, fragment
    assert b"postgres://app:<API_KEY>@<IP_ADDRESS>/db" in stored
    assert b"SECRET_KEY=<API_KEY>" in stored
