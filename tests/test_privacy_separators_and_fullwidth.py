"""Digit groups separated by a non-breaking hyphen, figure dash, minus sign or
zero-width space (raw or as JSON escapes), by ``%20`` or a query string's ``+``; full-width IPv4 and
IPv6 addresses and IBANs; addresses whose "@" or spelled-out brackets are HTML references escaped as
Go's JSON encoder writes them (``\\u0026lt;at\\u0026gt;``) or numeric (``&#60;at&#62;``); secrets
whose quoted value holds spaces or escaped quotes. With prose, math, dates, URLs, ids and hashes that
must stay as they are, the cheap gate before the decoding pass, and one OpenAI call end to end."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotrace.export import detectors
from autotrace.export.detectors import redact_text
from autotrace.testing.fake_openai import FakeOpenAI
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import exported_chat

#: Read as a hyphen between digit groups, and a zero-width space (read as a space)
HYPHEN_LIKE = {"non-breaking hyphen": "\u2011", "figure dash": "\u2012", "minus sign": "\u2212"}
ZERO_WIDTH_SPACE = "\u200b"


def _values(sep: str) -> list[tuple[str, str]]:
    """A card, two phones, an IBAN and (between hyphens) an SSN with ``sep`` between their groups."""
    values = [(sep.join(("4111", "1111", "1111", "1111")), "<CREDIT_CARD>"),
              (sep.join(("415", "555", "0132")), "<PHONE>"), (sep.join(("+44", "20", "7946", "0958")), "<PHONE>"),
              (sep.join(("DE89", "3704", "0044", "0532", "0130", "00")), "<IBAN>")]
    return [*values, (sep.join(("123", "45", "6789")), "<US_SSN>")] if sep != ZERO_WIDTH_SPACE else values


SEPARATED = [(sep, value, kind) for sep in (*HYPHEN_LIKE.values(), ZERO_WIDTH_SPACE) for value, kind in _values(sep)]


@pytest.mark.parametrize(("sep", "value", "kind"), SEPARATED)
def test_digit_groups_separated_by_a_hyphen_like_or_zero_width_character_are_redacted(
        sep: str, value: str, kind: str) -> None:
    assert redact_text(f"see {value} ok") == (f"see {kind} ok", 1)


@pytest.mark.parametrize(("sep", "value", "kind"), SEPARATED)
def test_those_separators_as_json_escapes_are_read_and_the_text_stays_json(sep: str, value: str, kind: str) -> None:
    text = json.dumps({"c": f"see {value} ok"})
    assert f"\\u{ord(sep):04x}" in text
    assert redact_text(text) == (json.dumps({"c": f"see {kind} ok"}), 1)


URL_ENCODED = [
    ("https://pay.example/checkout?card=4111%201111%201111%201111&exp=12", "https://pay.example/checkout?card=<CREDIT_CARD>&exp=12"),
    ("https://x.example/?iban=DE89%203704%200044%200532%200130%2000", "https://x.example/?iban=<IBAN>"),
    ("https://x.example/?iban=GB82%20WEST%201234%205698%207654%2032", "https://x.example/?iban=<IBAN>"),
    ("https://x.example/call?tel=%2B44%2020%207946%200958", "https://x.example/call?tel=<PHONE>"),
    ("https://x.example/call?tel=%2B442079460958", "https://x.example/call?tel=<PHONE>"),
    ("GET /pay?card=4111+1111+1111+1111&exp=12", "GET /pay?card=<CREDIT_CARD>&exp=12"),
    ("https://x.example/call?to=x&tel=%2B44+20+7946+0958", "https://x.example/call?to=x&tel=<PHONE>"),
    ("https://x.example/?phone=415+555+0132", "https://x.example/?phone=<PHONE>"),
    ("card=4111+1111+1111+1111&exp=12", "card=<CREDIT_CARD>&exp=12"),  # a form's body
    (json.dumps({"url": "https://x.example/?card=4111%201111%201111%201111"}), '{"url": "https://x.example/?card=<CREDIT_CARD>"}'),
]


@pytest.mark.parametrize(("text", "expected"), URL_ENCODED)
def test_digit_groups_url_encoded_or_separated_by_a_query_strings_plus_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


def _full_width(text: str) -> str:
    return "".join(chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char for char in text)


FULL_WIDTH = [
    (f"ip {_full_width('192.168.1.20')}", "ip <IP_ADDRESS>"), ("ip 192\uff0e168\uff0e1\uff0e20", "ip <IP_ADDRESS>"),
    (f"ip {_full_width('2001:db8::1')}", "ip <IP_ADDRESS>"), (f"ip {_full_width('fe80:0:0:0:0:0:0:1')}!", "ip <IP_ADDRESS>!"),
    (f"iban {_full_width('DE89 3704 0044 0532 0130 00')}", "iban <IBAN>"),
    (f"iban {_full_width('DE89370400440532013000')} ok", "iban <IBAN> ok"),
    (f"iban {_full_width('GB82 WEST 1234 5698 7654 32')}", "iban <IBAN>"),
    (f"iban {_full_width('de89 3704 0044 0532 0130 00')}", "iban <IBAN>"),
    (f"card {_full_width('4111 1111 1111 1111')}", "card <CREDIT_CARD>"),  # before the forms above were added: kept so
]


@pytest.mark.parametrize(("text", "expected"), FULL_WIDTH)
def test_full_width_ip_addresses_and_ibans_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)
    assert redact_text(json.dumps({"c": text})) == (json.dumps({"c": expected}), 1)  # escaped as json.dumps does


ENCODED_ADDRESSES = [
    "john\\u0026lt;at\\u0026gt;example.com", "john\\u0026lt;at\\u0026gt;example\\u0026lt;dot\\u0026gt;com",
    "john \\u0026lt;AT\\u0026gt; example \\u0026lt;DOT\\u0026gt; org", "john\\u0026#64;example.com",
    "john\\u0026#x40;example.com", "john\\u0026commat;example\\u0026period;com", "john&#60;at&#62;example.com",
    "john&#x3c;at&#x3e;example&#x3C;dot&#x3E;com", "john &#60;at&#62; example &#60;dot&#62; com",
    "john\\u0026#60;at\\u0026#62;example.com", "john&#060;AT&#062;example.com",
    "john\\u003cat\\u003eexample.com",  # before the forms above were added: kept so
]


@pytest.mark.parametrize("address", ENCODED_ADDRESSES)
def test_an_address_with_go_escaped_or_numeric_html_references_is_redacted(address: str) -> None:
    assert redact_text(f"mail {address} please") == ("mail <EMAIL> please", 1)


@pytest.mark.parametrize("address", ["john&lt;at&gt;example.com", "john&lt;at&gt;example&lt;dot&gt;com",
                                     "john&#64;example.com", "john <at> example <dot> com"])
def test_an_address_in_json_written_by_gos_encoder_is_redacted_and_the_text_stays_json(address: str) -> None:
    text = json.dumps({"c": f"mail {address} please"}).replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    replaced, count = redact_text(text)
    assert (json.loads(replaced), count) == ({"c": "mail <EMAIL> please"}, 1)


QUOTED_SECRETS = [
    ('{"password": "hunter 22 secret", "n": 1}', '{"password": "<API_KEY>", "n": 1}'),
    (json.dumps({"password": 'hun"ter22'}), '{"password": "<API_KEY>"}'),
    (json.dumps({"api_key": 'ab "cd" ef', "user": "bob"}), '{"api_key": "<API_KEY>", "user": "bob"}'),
    ('password="correct horse battery staple" user=bob', 'password="<API_KEY>" user=bob'),
    ("password='correct horse' user=bob", "password='<API_KEY>' user=bob"),
    ('{"secret": "it\'s a secret"}', '{"secret": "<API_KEY>"}'),
    ('token: "abc, def; ghi"', 'token: "<API_KEY>"'),
    ('{"token": "a}b]c,d e"}', '{"token": "<API_KEY>"}'),
    # JSON holding JSON: the inner value's quotes escaped twice are part of it
    (json.dumps({"c": json.dumps({"api_key": 'ab "cd" ef gh'})}), json.dumps({"c": json.dumps({"api_key": "<API_KEY>"})})),
    (json.dumps({"c": json.dumps({"password": "hunter 22 xyz", "n": 1})}),
     json.dumps({"c": json.dumps({"password": "<API_KEY>", "n": 1})})),
    # ending in an escaped backslash (taken), in JSON and in JSON in JSON
    (json.dumps({"password": "hunter 22\\"}), '{"password": "<API_KEY>"}'),
    (json.dumps({"c": json.dumps({"password": "hunter 22\\"})}), json.dumps({"c": json.dumps({"password": "<API_KEY>"})})),
    # a quote never closed on its line (free text): the rest of the line
    ('password: "hunter 22', 'password: "<API_KEY>'),
    ('my password: "correct horse battery staple\nthanks', 'my password: "<API_KEY>\nthanks'),
    ('token="abcdefgh ijk', 'token="<API_KEY>'),
    # not quoted: the value ends at a space, comma, semicolon, brace or quote (of the enclosing string)
    ("password=hunter22 and more", "password=<API_KEY> and more"), ("password=hunter22,user=bob", "password=<API_KEY>,user=bob"),
    ("token=abcdefgh;path=/", "token=<API_KEY>;path=/"), ('cmd("password=hunter22")', 'cmd("password=<API_KEY>")'),
    (json.dumps({"c": "login with password=hunter22 then"}), '{"c": "login with password=<API_KEY> then"}'),
]


@pytest.mark.parametrize(("text", "expected"), QUOTED_SECRETS)
def test_a_quoted_value_runs_to_its_closing_quote_and_an_unquoted_one_to_its_delimiter(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)
    assert redact_text(f"caf\u00e9 {text}") == (f"caf\u00e9 {expected}", 1)  # the expression itself (not ASCII)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(['"', "'", "\\", "hunter22", "x", " ", ",", "}", ":", "=", "\n"]), max_size=10)
       .map("".join))
def test_a_quoted_value_without_a_backslash_or_line_break_is_redacted_whole_and_json_stays_valid(value: str) -> None:
    whole = re.fullmatch(r"""(?![\s,;}\]"'])[^"\\\n]{6,}""", value) is not None  # (a quote first: opens it)
    for text, read in ((json.dumps({"password": value, "n": 1}), json.loads),
                       (json.dumps({"c": json.dumps({"password": value, "n": 1})}), lambda t: json.loads(t)["c"])):
        replaced = read(redact_text(text)[0])
        if whole:
            assert replaced in ({"password": "<API_KEY>", "n": 1}, json.dumps({"password": "<API_KEY>", "n": 1}))


NOT_PII = [
    # prose, math, dates and numbers with the new separators
    "pages 10\u201112 and 2019\u20112024", "a well\u2011known non\u2011breaking hyphen", "x = 5 \u2212 3 \u2212 1",
    "\u22124111111111111111", "temperature \u221212.5 \u00b0C", "on 2024\u201105\u201117", "v1\u20112\u20113",
    "ISBN 978\u20110\u2011306\u201140615\u20117", "score 3\u20122 after 90\u2012min", "zero\u200bwidth a\u200bb",
    "1\u200b000\u200b000 people", "4111\u20121111\u20121111\u20121112", "123\u201145\u20116789\u20111",
    # URLs with %20 and +, math with +
    "https://x.test/my%20file%202024.pdf", "https://x.test/search?q=hello+world&page=2", "https://x.test/?v=1.2.3+build.5",
    "https://x.test/?d=2024-05-17+10%3A30", "https://x.test/?n=12+34", "4111+1111+1111+1111 is a sum",
    "a + b == 2 + 2", "https://x.test/docs/getting%20started?page=2&lang=en", "100%20 sure",
    # ids and hashes
    "uuid 123e4567\u2011e89b\u201112d3\u2011a456\u2011426614174000", "uuid 123e4567-e89b-12d3-a456-426614174000",
    "sha 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "trace 4bf92f3577b34da6a3ce929d0e0e4736",
    # full-width text
    "\uff12\uff10\uff12\uff14\uff0e\uff10\uff15\uff0e\uff11\uff17", f"version {_full_width('1.2.3')}", _full_width("ABC123"),
    "\u6771\u4eac \uff12\uff15\u5ea6", f"time {_full_width('10:30:00')}", f"ip {_full_width('300.1.2.3')}",
    f"id {_full_width('DE89 3704 0044 0532 0130 01')}",  # fails mod-97
    # HTML references and Go-escaped ampersands that are no address
    "&#60;b&#62;bold&#60;/b&#62;", "AT\\u0026T Q\\u0026A at 5pm", "a \\u0026lt;b\\u0026gt; c", "Meet &#60;at&#62; noon",
    "look &#x3c;at&#x3e; this", "Meet \\u0026lt;at\\u0026gt; noon", "a=1\\u0026b=2", "x \\u0026amp; y",
    # assignments with short, empty or placeholder values
    "the token: is required", 'token: "abc"', '{"max_tokens": 256, "token_type": "bearer"}', 'password="" user="bobbobbob"',
    "password='', user='bobbobbob'", '{"password": "", "note": "hello world friends"}', '{"password": "<EMAIL>"}',
    'print("token: " + value)', 'password: "ab',  # an unclosed quote: too short
]


@pytest.mark.parametrize("text", NOT_PII)
def test_prose_math_dates_urls_ids_and_markup_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)
    assert redact_text(json.dumps({"c": text})) == (json.dumps({"c": text}), 0)


@pytest.mark.parametrize("text", ["Compute 12 - 7, version 2.4.1, on 2024-05-17; see https://x.test/a?b=c&d=e.",
                                  "def add(a, b):\n    return a + b", "100% sure", "x == y", "\u6771\u4eac 25\u5ea6"])
def test_a_text_without_the_trigger_characters_is_not_decoded(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoding pass (a second search when it reads something) runs only after a cheap test."""
    def decoded(_: str) -> str | None:
        raise AssertionError("decoded")

    monkeypatch.setattr(detectors, "_decoded", decoded)
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize("text", ["a%20b", "a+b=c", "&#60;", "\\u2011", "\uff0b1"])
def test_a_text_with_a_trigger_character_is_decoded(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    monkeypatch.setattr(detectors, "_decoded", lambda text: seen.append(text))
    redact_text(text)
    assert seen == [text]


@pytest.mark.parametrize(("text", "expected"), [
    ("password: '" + "\\'" * 20000, "password: '" + "\\'" * 20000),  # each opening quote tried: linear
    ('password: "' + "a " * 30000, 'password: "' + "a " * 30000),  # no closing quote within 512 characters
    (('password="' + "x" * 10) * 5000, ('password="<API_KEY>"' + "x" * 10) * 2500),
    ("&#60;at&#62;" * 10000, "&#60;at&#62;" * 10000), ("a\\u0026lt;at\\u0026gt;" * 6000, "a\\u0026lt;at\\u0026gt;" * 6000),
    ("\u2212".join(["12"] * 20000), "\u2212".join(["12"] * 20000)), ("1%20" * 20000, "1%20" * 20000),
    ("?a=" + "1+" * 30000, "?a=" + "1+" * 30000), ("\uff11\uff0e" * 20000, "\uff11\uff0e" * 20000),
])
def test_long_adversarial_texts_are_redacted_as_expected(text: str, expected: str) -> None:
    """60 kB and more of the new forms' parts (each start of a run read once: linear)."""
    assert redact_text(text) == (expected, expected.count("<API_KEY>"))


def test_the_new_forms_are_redacted_in_an_openai_call_exported_end_to_end(rx: OtlpReceiver, fake: FakeOpenAI) -> None:
    content = (f"card 4111\u20111111\u20111111\u20111111, ip {_full_width('192.168.1.20')}, mail john&#60;at&#62;example.com, "
               'config {"password": "hunter 22 secret"}, see https://x.test/?q=a+b, pages 10\u201112')
    redacted = ('card <CREDIT_CARD>, ip <IP_ADDRESS>, mail <EMAIL>, config {"password": "<API_KEY>"}, '
                "see https://x.test/?q=a+b, pages 10\u201112")
    payload = exported_chat(rx, fake, content, redacted)
    card = ("4111\u20111111".encode(), b"4111111111111111")  # not bare 4111: the fake's port may hold it
    assert not any(piece in payload for piece in card)
    assert b"john" not in payload and b"hunter" not in payload and b"secret\\\"" not in payload
