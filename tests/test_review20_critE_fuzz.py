"""Review 20 (critic E): ``redact_text`` and ``quote_bare_placeholders`` fuzzed with JSON documents holding
secrets, placeholders, escapes and other scripts at random places (fixed seeds): no exception, JSON
text stays JSON, and a second redaction finds nothing more."""

from __future__ import annotations

import json
import random

from autotrace.export._json_values import quote_bare_placeholders
from autotrace.export.detectors import redact_text

_SEGMENTS = (
    "4111 1111 1111 1111", "jane.doe@example.com", "Cookie: sid=8f3a9c2e1b7d4f60a5e2; theme=dark",
    "Set-Cookie: a=1234567abc; Path=/, b=zzzzzzzzzzzzzzzzzzzzzzzz", "mysql -uroot -pHunter22x db",
    "--password Hunt3r!!", "Pwd=Hunter22!;", "AccountKey=abcd1234==;", "?a=1&sig=AbCdEf%2B0123456789abcdef%3D",
    "GOCSPX-abcdefghijklmnopqrstuvwx12", "ya29.a0AfH6SMBxabcdefghij123456", "Bearer%20abcdefghij0123",
    "BEARER ABCDEFGHIJ0123456789", "DE89 3704 0044 0532 0130 00", "x DE89 4111 1111 1111 1111", "123-45-6789",
    "<EMAIL>", "<b>x</b>", "password: hunter22", "Enter password:", "token=", "pwd", "pwd: current dir",
    "sig", "-p", "cookie", "curl -u admin:Hunter22x x.io", "curl --cookie sid=8f3a9c2e1b7d4f60a5e2",
    "docker run --name mysql -p3306:3306 mysql", "data:image/png;base64,iVBORw0KGgo=", "é ü 你好 \u3000",
    "<password>hunter22</password>", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIx.abc", "\\", "\"", "'", ":", "=", "<",
)


def _text(rng: random.Random) -> str:
    return " ; ".join(rng.choice(_SEGMENTS) for _ in range(rng.randint(0, 6)))


def _value(rng: random.Random, depth: int = 0) -> object:
    roll = rng.random()
    if depth > 3 or roll < 0.45:
        return _text(rng)
    if roll < 0.55:
        return rng.choice([4111111111111111, 5555555555554444, 1, -3.5, True, None])
    if roll < 0.8:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {_text(rng) or "k": _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _documents(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    documents = []
    for _ in range(count):
        text = json.dumps([_value(rng)], ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 2]))
        documents.append(json.dumps({"inner": text}) if rng.random() < 0.3 else text)
    return documents


def test_json_stays_json_and_redaction_is_idempotent() -> None:
    for text in _documents(20, 1000):
        out, _ = redact_text(text)
        json.loads(out)
        assert redact_text(out) == (out, 0), text


def test_free_text_redaction_is_idempotent() -> None:
    rng = random.Random(21)
    for _ in range(600):
        text = _text(rng)
        out, _ = redact_text(text)
        assert redact_text(out) == (out, 0), text


def test_quote_bare_placeholders_keeps_json_and_every_placeholder() -> None:
    rng = random.Random(22)
    kinds = ("<EMAIL>", "<CREDIT_CARD>", "<API_KEY>", "<US_SSN>")
    for _ in range(400):
        original = json.dumps([_value(rng)])
        text = original  # (these numbers are JSON numbers only: strings hold cards in groups)
        for number in ("4111111111111111", "5555555555554444"):
            while number in text:
                text = text.replace(number, rng.choice(kinds), 1)
        out = quote_bare_placeholders(text, original)
        if text != original:
            json.loads(out)
        assert out.replace('"', "") == text.replace('"', "")
