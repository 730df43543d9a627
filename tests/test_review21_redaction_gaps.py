"""Review 21, redaction: secrets given to commands (sshpass's ``-p``, redis-cli's ``-a``, curl's ``-b``), a
password's key shortened (``DB_PASS=``), a Bearer token after the word "token" or one of another script,
two cards among a list's numbers, and placeholders bare in JSON held in a JSON string."""

from __future__ import annotations

import json
import random

import pytest

from autotrace.export.detectors import redact_text


@pytest.mark.parametrize(("text", "expected"), [
    ("sshpass -p secret ssh user@host", "sshpass -p <API_KEY> ssh user@host"),
    ("sshpass -p 'hunter 22' ssh deploy@host", "sshpass -p '<API_KEY>' ssh deploy@host"),
    ("sshpass -psecret ssh -p 2222 u@host", "sshpass -p<API_KEY> ssh -p 2222 u@host"),  # ssh's port stays
    ("redis-cli -h cache -p 6379 -a hunter22pass ping", "redis-cli -h cache -p 6379 -a <API_KEY> ping"),
    ("curl -b 'session=abcdef1234567890abcdef; theme=dark' https://x.io",
     "curl -b 'session=<API_KEY>; theme=dark' https://x.io"),
    ("DB_PASS=hunter22xyz\nSMTP_PASS=s3cr3tvalue\n", "DB_PASS=<API_KEY>\nSMTP_PASS=<API_KEY>\n"),
    ('{"pass": "hunter22xyz"}', '{"pass": "<API_KEY>"}'),
    ("https://x.io/login?user=bob&pass=hunter22xyz", "https://x.io/login?user=bob&pass=<API_KEY>"),
    ("passphrase: correct-horse", "passphrase: <API_KEY>"),
    ("Authorization: Bearer令牌abcdEFGH1234567890xyz", "Authorization: Bearer令牌<BEARER_TOKEN>"),
    ("使用Bearer令牌 abcdEFGH1234567890xyz 访问", "使用Bearer令牌 <BEARER_TOKEN> 访问"),
    ("Bearer トークン\uff1aabcdefgh12345678", "Bearer トークン\uff1a<BEARER_TOKEN>"),
    ("use the Bearer token abcdef123456789", "use the Bearer token <BEARER_TOKEN>"),
    ("order 1234 4111 1111 1111 1111 5555 5555 5555 4444", "order 1234 <CREDIT_CARD> <CREDIT_CARD>"),
    ("4111 1111 1111 1111 5555 5555 5555 4444 9999", "<CREDIT_CARD> <CREDIT_CARD> 9999"),
])
def test_the_secret_is_replaced(text: str, expected: str) -> None:
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize("text", [
    "sshpass -p $SSHPASS ssh host", "redis-cli -a <password> ping", "curl -b cookies.txt https://x.io",
    "bypass=enabled1", "compass=northwest", "First pass: tokenization", "DATABASE_PASSWORD=\nDEBUG=true",
    "Bearer令牌是一种认证方式", "use a Bearer token to authenticate", "Bearer tokens expire after 3600 seconds",
    "tar -a -cf out.tar dir", "1234 4111 1111 1111 1111 5678 9012",
    "7081 8341 9434 4329 8170 8895 9675 1234 5678 4411 2290 3418 9920 1187",
])
def test_ordinary_text_stays(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_a_long_list_of_random_fours_never_loses_a_number() -> None:
    """Cards may leave one number on either side of a list: a list of forty random ids never reads as them."""
    rng = random.Random(21)
    for _ in range(200):
        text = " ".join(f"{rng.randrange(10_000):04d}" for _ in range(40))
        assert redact_text(text) == (text, 0)


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


@pytest.mark.parametrize(("value", "inner"), [
    ({"arguments": json.dumps({"card": 4111111111111111, "to": "a@b.com", "n": [4111111111111111]})},
     {"card": "<CREDIT_CARD>", "to": "<EMAIL>", "n": ["<CREDIT_CARD>"]}),
    ({"a": json.dumps([4111111111111111, "x"], indent=2)}, ["<CREDIT_CARD>", "x"]),
    ([json.dumps({"a@b.com": 1, "c@d.com": 4111111111111111})], {"<EMAIL>": "<CREDIT_CARD>"}),
])
def test_json_in_a_json_string_stays_json(value: object, inner: object) -> None:
    redacted, replaced = redact_text(json.dumps(value))
    assert replaced >= 1
    assert json.loads(_strings(json.loads(redacted))[0]) == inner


def test_json_two_strings_down_stays_json() -> None:
    text = json.dumps({"a": json.dumps({"b": json.dumps({"card": 4111111111111111})})})
    redacted = redact_text(text)[0]
    assert json.loads(json.loads(json.loads(redacted)["a"])["b"]) == {"card": "<CREDIT_CARD>"}


@pytest.mark.parametrize("value", [
    {"a": "[4111111111111111, x]"},  # no JSON before: left as written
    {"a": json.dumps({"x": 4111111111111111}) + " trailing"},
    {"note": "contact: a.b@example.com", "q": 'say \\"hi\\"'},
])
def test_a_string_that_was_no_json_keeps_its_placeholders_bare(value: dict[str, str]) -> None:
    text = json.dumps(value)
    redacted = redact_text(text)[0]
    assert '\\"<' not in redacted
    json.loads(redacted)
