"""Addresses spelled out with HTML-escaped brackets (``jane&lt;at&gt;example&lt;dot&gt;com``),
secrets whose value starts with a quote (``{"password": "\\"hunter22\\""}``), assignments that leave JSON
valid, and digit groups separated by ``&nbsp;``, an escaped no-break space after a bracket or led by a
full-width plus; with HTML, prose and URLs that must stay as they are, and one OpenAI call end to end."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotrace.export.detectors import _spelled_out, redact_text
from autotrace.export.detectors_spelled import _spelled_email
from autotrace.testing.fake_openai import FakeOpenAI
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import exported_chat

#: Addresses with an "@" or its spelled-out brackets written as HTML or URL encoders, JSON or chat
#: UIs write them: each the whole of what is replaced in "mail {address} please".
ENCODED_ADDRESSES = [
    "jane&lt;at&gt;example&lt;dot&gt;com", "jane &lt;at&gt; example &lt;dot&gt; com", "jane&lt;at&gt;example.com",
    "jane.doe &lt;AT&gt; example &lt;DOT&gt; co &lt;dot&gt; uk", "Jane&lt;At&gt;Example&lt;Dot&gt;Org",
    "jane&lt;dot&gt;doe&lt;at&gt;example&lt;dot&gt;de", "jane &lt;at&gt; example [dot] com",
    # caught before the forms above were added: kept so
    "jane&#64;example.com", "jane&#x40;example.com", "jane&commat;example.com", "jane%40example.com",
    "jane\\u0040example.com",
]
#: HTML, prose and URLs with entities, "<at>" escaped, or "%40" that are no address.
NOT_ADDRESSES = [
    "&lt;b&gt;bold&lt;/b&gt;", "AT&amp;T", "Q&amp;A at 5pm", "AT&amp;T &lt;at&gt; noon", "Meet &lt;at&gt; noon",
    "&lt;at&gt;value&lt;/at&gt;", "&lt;at&gt; and &lt;dot&gt; tokens", "x &lt;at&gt; y &lt;dot&gt; 1",
    "<p>Q&amp;A &lt;at&gt; 5pm &amp; drinks</p>", "https://x.test/a%40b", "https://x.test/?q=foo%40bar&page=2",
    "https://x.test/path%40segment/file", "100%40 sure", "&amp;lt;at&amp;gt;", "&lt;AT&gt; &lt;DOT&gt;",
    "price 1&nbsp;000&nbsp;EUR", "&nbsp;&nbsp;2024&nbsp;edition", "&#160;12&#160;34", "Tom&nbsp;&amp;&nbsp;Jerry",
]
#: Assignments whose value starts with a quote, plain or escaped: its characters are all replaced.
QUOTED_SECRETS = [
    ('{"password": "\\"hunter22\\""}', '{"password": "\\"<API_KEY>\\""}'),
    ('"api_key": "\\"abcdefgh12345\\""', '"api_key": "\\"<API_KEY>\\""'),
    ('{"api_key": "\\"sk-abcdefghijklmnopqrstuv\\""}', '{"api_key": "\\"<API_KEY>\\""}'),
    ("password=\\\"hunter22\\\"", "password=\\\"<API_KEY>\\\""),
    ("password=\"'hunter22'\"", "password=\"'<API_KEY>'\""),
    ('password = """hunter22"""', 'password = """<API_KEY>"""'),
    ("{'secret': '\\'hunter22\\''}", "{'secret': '\\'<API_KEY>\\''}"),
    ('{"token": "\\"abcdefgh\\"", "n": 1}', '{"token": "\\"<API_KEY>\\"", "n": 1}'),
    # JSON holding JSON: the inner value's escaped quotes are escaped again
    (json.dumps({"c": json.dumps({"password": '"hunter22"'})}),
     json.dumps({"c": json.dumps({"password": '"<API_KEY>"'})})),
]
#: Digit groups separated as HTML, JSON encoders and IMEs write them.
ENCODED_DIGITS = [
    ("card 4111&nbsp;1111&nbsp;1111&nbsp;1111 ok", "card <CREDIT_CARD> ok"),
    ("tel +44&nbsp;20&nbsp;7946&nbsp;0958", "tel <PHONE>"),
    ("iban DE89&nbsp;3704&nbsp;0044&nbsp;0532&nbsp;0130&nbsp;00", "iban <IBAN>"),
    ("card 4111&#160;1111&#160;1111&#160;1111", "card <CREDIT_CARD>"),
    ("card 4111&#xA0;1111&#xa0;1111&#xA0;1111", "card <CREDIT_CARD>"),
    (json.dumps({"c": "card 4111&nbsp;1111&nbsp;1111&nbsp;1111"}), '{"c": "card <CREDIT_CARD>"}'),
    (json.dumps({"c": "phone (415)\u00a0555-0132"}), '{"c": "phone <PHONE>"}'),
    (json.dumps({"c": "x (415)\u00a0555-0132 y"}), '{"c": "x <PHONE> y"}'),
    ("\uff0b\uff14\uff14 \uff12\uff10 \uff17\uff19\uff14\uff16 \uff10\uff19\uff15\uff18", "<PHONE>"),
    ("tel \uff0b\uff14\uff14 \uff12\uff10 \uff17\uff19\uff14\uff16 \uff10\uff19\uff15\uff18", "tel <PHONE>"),
    (json.dumps({"c": "tel \uff0b\uff14\uff14 \uff12\uff10 \uff17\uff19\uff14\uff16 \uff10\uff19\uff15\uff18"}),
     '{"c": "tel <PHONE>"}'),
    (json.dumps({"c": "\uff0b1 415 555 0132"}), '{"c": "<PHONE>"}'),
]


@pytest.mark.parametrize("address", ENCODED_ADDRESSES)
def test_an_address_written_with_html_references_url_or_json_escapes_is_redacted(address: str) -> None:
    assert redact_text(f"mail {address} please") == ("mail <EMAIL> please", 1)


@pytest.mark.parametrize("address", ENCODED_ADDRESSES)
def test_those_addresses_in_json_text_are_redacted_and_the_text_stays_json(address: str) -> None:
    text = json.dumps({"c": f"mail {address} please"}).replace("\\\\u0040", "\\u0040")
    replaced, count = redact_text(text)
    assert (json.loads(replaced), count) == ({"c": "mail <EMAIL> please"}, 1)


def test_an_html_escaped_at_passes_the_spelled_check() -> None:
    assert _spelled_out("jane&lt;at&gt;example&lt;dot&gt;com")
    assert _spelled_out("jane &lt;AT&gt; example.com")
    assert not _spelled_out("AT&amp;T &lt;b&gt;Q&amp;A&lt;/b&gt;")


@pytest.mark.parametrize("text", NOT_ADDRESSES)
def test_html_prose_and_urls_with_references_or_percent_40_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)
    assert redact_text(json.dumps({"c": text})) == (json.dumps({"c": text}), 0)


@pytest.mark.parametrize(("text", "expected"), QUOTED_SECRETS)
def test_a_secret_whose_value_starts_with_a_quote_is_redacted_whole(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)
    assert "hunter" not in redact_text(text)[0] and "abcdefgh" not in redact_text(text)[0]


@pytest.mark.parametrize("value", ["abcdefgh\\", "abcdefgh\\\\", '\\"abcdefgh\\"', 'abcdefgh\\"xy', "ab\\\\cdefgh\\"])
def test_an_assignment_ending_in_a_backslash_leaves_the_json_valid(value: str) -> None:
    """The value takes escapes whole: one ending in an escaped backslash leaves no half escape."""
    text = json.dumps({"password": value})
    replaced, count = redact_text(text)
    assert count == 1 and json.loads(replaced) == {"password": json.loads(replaced)["password"]}
    nested = json.dumps({"c": json.dumps({"password": value})})
    assert json.loads(redact_text(nested)[0])["c"].startswith('{"password": "')


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(['"', "'", "\\", "hunter22", "x", " ", ",", "}", "{", ":", "="]), max_size=10)
       .map("".join))
def test_json_and_json_in_json_holding_a_secret_stay_valid(value: str) -> None:
    for text in (json.dumps({"password": value, "n": 1}), json.dumps({"c": json.dumps({"api_key": value})})):
        replaced, _ = redact_text(text)
        json.loads(replaced)
        if re.fullmatch(r"""["'\\]*hunter22["'\\]*""", value):
            assert "hunter22" not in replaced


@pytest.mark.parametrize(("text", "expected"), ENCODED_DIGITS)
def test_digit_groups_separated_by_html_or_escaped_no_break_spaces_or_after_a_full_width_plus(
        text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize(("text", "expected"), [
    ("a&lt;dot&gt;" * 10000 + "&lt;at&gt;", "a&lt;dot&gt;" * 10000 + "&lt;at&gt;"),
    ("a &lt;dot&gt; " * 7500 + "&lt;at&gt;", "a &lt;dot&gt; " * 7500 + "&lt;at&gt;"),
    ("jane &lt;at&gt; " + "example &lt;dot&gt; " * 4000 + "1", "<EMAIL> &lt;dot&gt; 1"),
    ("1&nbsp;" * 10000, "1&nbsp;" * 10000),
    ("password: \"" + "\\\\" * 30000 + "\\\"", "password: \"<API_KEY>\\\\\\\""),
    # a run of quotes is a value's opening: what follows it, the next key here, is its value
    (("password=" + "\\\"" * 10) * 3000, ("password=" + "\\\"" * 10 + "<API_KEY>" + "\\\"" * 10) * 1500),
])
def test_long_adversarial_texts_are_redacted_as_expected(text: str, expected: str) -> None:
    """60 kB runs of the new forms' parts (each start of a run read once: linear)."""
    assert redact_text(text) == (expected, len(re.findall("<[A-Z_]+>", expected)))


def test_the_new_forms_are_redacted_in_an_openai_call_exported_end_to_end(rx: OtlpReceiver, fake: FakeOpenAI) -> None:
    content = ('mail jane&lt;at&gt;example&lt;dot&gt;com, config {"password": "\\"hunter22\\""}, '
               "card 4111&nbsp;1111&nbsp;1111&nbsp;1111; AT&amp;T Q&amp;A at 5pm")
    redacted = 'mail <EMAIL>, config {"password": "\\"<API_KEY>\\""}, card <CREDIT_CARD>; AT&amp;T Q&amp;A at 5pm'
    payload = exported_chat(rx, fake, content, redacted)
    assert b"jane" not in payload and b"hunter22" not in payload
    assert b"4111&nbsp;1111" not in payload and b"1111&nbsp;1111" not in payload  # not bare 4111: the fake's port


def test_no_match_starts_right_after_an_html_escaped_spelled_dot() -> None:
    """Tried from within a run of spelled dots, each start would read to the run's end (quadratic)."""
    text = "a&lt;dot&gt;b&lt;at&gt;example&lt;dot&gt;com a &lt;dot&gt; b &lt;at&gt; example.com"
    for ascii_text in (True, False):
        assert _spelled_email(ascii_text).match(text, text.index("b&lt;at")) is None
        assert _spelled_email(ascii_text).match(text, text.index("b &lt;at")) is None
        assert _spelled_email(ascii_text).match(text, 0) is not None
