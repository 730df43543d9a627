"""Review 19: numbers and tokens glued to Chinese, Japanese, Korean or Thai text, which puts no space
between words (``卡号4111111111111111``, ``电话13800138000``, ``IP是192.168.1.10``), raw or escaped as
``json.dumps`` writes them (``\\u662fsk-proj-...``): the boundaries read those letters as a word's, so
none was redacted. Latin words glued to digits (hex ids, ``order12345678``) stay as they were."""

from __future__ import annotations

import json
import re

import pytest

import autotrace
from autotrace.export import detectors
from autotrace.export.detectors import redact_text

_KEY = "sk-proj-AbCdEfGhIjKlMnOpQrStUv123456"
_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(("text", "expected"), [
    ("卡号4111111111111111", "卡号<CREDIT_CARD>"),
    ("卡号4111 1111 1111 1111号", "卡号<CREDIT_CARD>号"),
    ("카드4111111111111111입니다", "카드<CREDIT_CARD>입니다"),
    ("卡号４１１１１１１１１１１１１１１１", "卡号<CREDIT_CARD>"),
    ("口座DE89370400440532013000です", "口座<IBAN>です"),
    ("电话+8613800138000", "电话<PHONE>"),
    ("電話03-1234-5678", "電話<PHONE>"),
    ("电话(415) 555-0132", "电话<PHONE>"),
    ("IP是192.168.1.10。", "IP是<IP_ADDRESS>。"),
    ("\uff29\uff30是\uff11\uff19\uff12\uff0e\uff11\uff16\uff18\uff0e\uff11\uff0e\uff11\uff10", "\uff29\uff30是<IP_ADDRESS>"),
    ("IPv6是2001:db8::8a2e:370:7334", "IPv6是<IP_ADDRESS>"),
    ("番号078 05 1120です", "番号<US_SSN>です"),
])
def test_a_number_glued_to_text_without_spaces_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize(("text", "expected"), [
    ("电话13800138000", "电话<PHONE>"),
    ("我的手机号是13800138000。", "我的手机号是<PHONE>。"),
    ("電話番号は090 1234 5678です", "電話番号は<PHONE>です"),
    ("โทร0812345678", "โทร<PHONE>"),
    ("전화01012345678", "전화<PHONE>"),
    ("telephone 4155550132です", "telephone <PHONE>です"),
])
def test_a_phone_number_named_in_those_scripts_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize(("value", "expected"), [
    (f"是{_KEY}", "是<API_KEY>"),
    (f"令牌是{_JWT}", "令牌是<JWT>"),
    ("卡号4111111111111111", "卡号<CREDIT_CARD>"),
    ("IP是192.168.1.10", "IP是<IP_ADDRESS>"),
    ("口座DE89370400440532013000", "口座<IBAN>"),
    ("电话13800138000", "电话<PHONE>"),
    ("電話13800138000", "電話<PHONE>"),
    ("电话+86 138 0013 8000", "电话<PHONE>"),
])
def test_a_value_after_an_escaped_letter_in_json_text_is_redacted(value: str, expected: str) -> None:
    """``json.dumps`` escapes each such letter (``\\u53f7``): its hex digits ran into the number's."""
    replaced, count = redact_text(json.dumps({"content": value}))
    assert (json.loads(replaced), count) == ({"content": expected}, 1)


@pytest.mark.parametrize("text", [
    "abc4111111111111111", "order12345678", "id 4111111111111111abc", "a3f4111111111111111",
    "电话 2024年", "手机型号12345678901234567890", "版本1.2.3", "x078 05 1120", "号码123",
    json.dumps("订单a3f4111111111111111"), json.dumps("是order12345678"),
])
def test_latin_words_glued_to_digits_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("value", "expected"), [
    ("邮件jane@example.com", "<EMAIL>"),  # (its local part reads the escapes, as before)
    ("jane@例えexample.jp", "<EMAIL>"),
    ("山田(at)example(dot)jp", "<EMAIL>"),
    ("mail 山田abc(at)example(dot)jp", "mail <EMAIL>"),
])
def test_addresses_with_escaped_letters_are_found_as_before(value: str, expected: str) -> None:
    replaced, count = redact_text(json.dumps({"c": value}))
    assert (json.loads(replaced), count) == ({"c": expected}, 1)


def test_the_escapes_marked_are_exactly_the_letters_of_those_scripts() -> None:
    glued = re.compile(f"[{detectors._GLUED_SCRIPTS}]")
    for code in range(0x10000):
        for escape in (f"\\u{code:04x}", f"\\u{code:04X}"):
            assert (detectors._GLUED_ESCAPE.match(escape + "1") is not None) == (
                glued.match(chr(code)) is not None), escape


@pytest.mark.parametrize("run", ["号1", "\\u53f71", "\\u53f7(", "座DE89", "是1.2.3.", "电话", "\\u7535\\u8bdd", "\\\\"])
def test_long_runs_of_glued_text_and_digits_keep_their_values(run: str) -> None:
    """A 60 kB run of such text (adversarial) is read through, and a value after it found."""
    text = run * (60_000 // len(run)) + "。4111 1111 1111 1111"
    assert redact_text(text) == (text[:-19] + "<CREDIT_CARD>", 1)


def test_glued_values_never_reach_the_local_store(tmp_path) -> None:
    path = tmp_path / "t.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=(), export_interval=0.05)
    message = "我的电话是13800138000。卡号4111111111111111。服务器IP是192.168.1.10。密钥是" + _KEY
    with autotrace.start_generation("llm", model="m", input=[{"role": "user", "content": message}]) as gen:
        gen.set_output({"role": "assistant", "content": "收到。卡号4111 1111 1111 1111号"})
    assert autotrace.flush(10)
    raw = path.read_bytes() + (tmp_path / "t.db-wal").read_bytes()
    for secret in ("13800138000", "4111111111111111", "4111 1111 1111 1111", "192.168.1.10", _KEY[:12]):
        assert secret.encode() not in raw, secret
    assert b"<CREDIT_CARD>" in raw and b"<PHONE>" in raw
