"""Review 19 of shapes the detectors missed: an international phone number with its country code in
brackets (``(+44) 20 7946 0958``, as forms and signatures write it), a Slack client's session
token (``xoxc-``) and cookie (``xoxd-``, URL-encoded), and a service token or JWT right after Chinese,
Japanese or Thai text, which puts no space between words (``密钥是sk-proj-...``: ``\b`` needed one)."""

from __future__ import annotations

import json

import pytest

from autotrace.export.detectors import redact_text

_XOXC = "xoxc-1234567890-1234567890123-1234567890123-abcdef0123456789abcdef0123456789"
_XOXD = "xoxd-HiFJqe2Bb6hTwk%2Bvd%2FWgljwWeG0OeJYIAD6gAz2kf7e%2FqA%3D%3D"


@pytest.mark.parametrize(("text", "expected"), [
    ("call (+44) 20 7946 0958 today", "call <PHONE> today"),
    ("Tel (+44) (0)20 7946 0958", "Tel <PHONE>"),
    ("(+1) 415-555-0132", "<PHONE>"),
    ("(+33) 6 12 34 56 78", "<PHONE>"),
    ("(+49)3012345678", "<PHONE>"),
    (json.dumps({"phone": "(+91) 98765 43210"}), '{"phone": "<PHONE>"}'),
    ("(+44) 20 7946 0958 4111 1111 1111 1111", "<PHONE> <CREDIT_CARD>"),
])
def test_a_phone_with_its_country_code_in_brackets(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, expected.count("<"))


@pytest.mark.parametrize("text", ["f(+1) 2 3", "x(+44) 20 7946 0958", "(+12 lines) 2024-12-05", "(+3)", "a (+1) b"])
def test_brackets_around_a_signed_number_alone_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), [
    (f"token {_XOXC}", "token <API_KEY>"),
    (f"Cookie: d={_XOXD}; d-s=1700000000", "Cookie: d=<API_KEY>; d-s=1700000000"),
    (json.dumps({"headers": {"cookie": f"d={_XOXD}"}}), '{"headers": {"cookie": "d=<API_KEY>"}}'),
])
def test_a_slack_client_token_and_cookie(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(("text", "expected"), [
    ("我的密钥是sk-proj-AbCdEfGhIjKlMnOpQrStUvWx", "我的密钥是<API_KEY>"),  # Chinese has no space between words
    ("キーはAIzaSyD-1234567890abcdefghijklmnopqrstuでした", "キーは<API_KEY>でした"),
    ("密钥AKIAIOSFODNN7EXAMPLE", "密钥<API_KEY>"),
    ("トークンghp_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij", "トークン<API_KEY>"),
    ("รหัสxoxb-1234567890-abcdefghij", "รหัส<API_KEY>"),  # Thai neither
    (f"令牌{_JWT}", "令牌<JWT>"),
])
def test_a_token_right_after_text_in_a_script_without_spaces(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", ["risk-abcdefghijklmnopqrstuvwx", "Schlüsselsk-proj-AbCdEfGhIjKlMnOpQrStUvWx",
                                  "x_sk-abcdefghijklmnopqrstu", f"ab{_JWT}", f"é{_JWT}", "ÄAKIAIOSFODNN7EXAMPLE"])
def test_a_token_shape_inside_a_word_of_a_spaced_script_stays(text: str) -> None:
    assert redact_text(text) == (text, 0)
