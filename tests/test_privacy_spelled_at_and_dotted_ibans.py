"""E-mail addresses spelled out to dodge scrapers (``jane [at] example [dot] com``,
``jane AT example DOT com``), an "@" written ``&commat;`` and dots written as HTML references, and
IBANs grouped with dots or en dashes; with corpora of prose, versions, dates and numbers that must
stay as they are. End to end through a loopback OTLP receiver too."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace

import autotrace
from autotrace.export.detectors import (
    _PLAIN_HINTS,
    _contains_any,
    _encoded_at,
    _plain_hint,
    _spelled_out,
    redact_text,
)
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant

EN_DASH = "\u2013"
EMAIL_AND_IBAN = frozenset({"EMAIL", "IBAN"})

#: Addresses spelled out, each the whole of what is replaced in "... {address} ..." (see SPELLED_IN).
SPELLED = [
    "jane [at] example [dot] com", "jane(at)example(dot)com", "jane [AT] example [DOT] com", "jane(AT)example.com",
    "jane[at]example.com", "jane (at) example (dot) co (dot) uk", "jane [at] example dot com",
    "jane[dot]doe[at]example[dot]com", "jane (dot) doe (at) example.org", "jane AT example DOT com",
    "Jane.Doe AT Example DOT Org", "jane AT example [dot] io", "jane at example DOT com",
    "jane.doe at example dot com", "jane_doe at example dot co dot uk", "jane+news at example dot org",
    "jane dot doe at example dot com", "j.doe at uni-bonn dot de", "jane99 at mail dot example dot net",
    "jos\u00e9 [at] exemple [dot] fr", "\u5c71\u7530(at)example(dot)jp",
]
#: Lower-case words with nothing of an address in them, after a word naming one: (text, expected).
SPELLED_IN = [
    ("email: jane at example dot com", "email: <EMAIL>"), ("E-Mail jane at example dot de", "E-Mail <EMAIL>"),
    ("contact sales at acme dot io for a quote", "contact <EMAIL> for a quote"),
    ("my address is bob at example dot org.", "my address is <EMAIL>."),
    ("you can reach me at jane at example dot com", "you can reach me at <EMAIL>"),
    ("write to bob_smith at mail dot example dot co dot uk", "write to <EMAIL>"),
    (json.dumps({"email": "jane at example dot com"}), '{"email": "<EMAIL>"}'),
    (json.dumps({"c": "mail me:\njane [at] example [dot] com"}), '{"c": "mail me:\\n<EMAIL>"}'),
    ("a [at] b [dot] cc and c(at)d.org", "<EMAIL> and <EMAIL>"),
]
#: Prose, code and markup holding "at" and "dot" (or brackets round them) that is no address.
NOT_SPELLED = [
    "We met at noon to discuss the dot product.", "Look at the dot com bubble of 2000.",
    "Click at the red dot on the map.", "Point at each dot in turn.", "stare at it dot by dot",
    "arrived at home dot com", "meet at noon dot com", "email me at noon dot tomorrow",
    "email jane at the dot com address", "email: ask at reception dot then", "The bug is at line 12, dot notation fails",
    # a website spelled out (speech transcripts): no address
    "Find us at acme dot com", "Sign up at example dot io today", "Tickets at eventbrite dot com",
    "we work at Google dot com", "VISIT US AT ACME DOT COM", "JANE AT EXAMPLE DOT COM",
    "jane at example dot com",  # nothing says it is an address: a website read out looks the same
    "Contact: support team [at] noon", "see [at](https://x.com)", "df.loc[at] = x", "data[at].dot(y)",
    "repeat(format(concat(a, b)))", "value (at) 5 dot 3", "mail at 9 dot 30", "x [at] y [dot] 1",
    "meet (at) the station [dot] later", "AT&T and DOT regulations at the port",
    "a .dotfile at home", "dotenv at startup", "(AT) Austria, (DE) Germany",
    # HTML references that are no "@" of an address
    "see &commat;mention", "AT&amp;T &period; done", "Q&amp;A &#46; end", "&commat; alone", "a&#46;b&#46;c",
]
#: Numbers with dots or en dashes that are no IBAN.
NOT_IBANS = [
    "version 1.24.3 (build 20240517)", "release 2024.05.17.1234", "OID 1.3.6.1.4.1.311.21.7", "Due 17.05.2024",
    f"years 2019{EN_DASH}2024", f"pages 120{EN_DASH}145", "ip 10.0.0.1 and 192.168.1.254",
    "DE89.3704.0044.0532.0130.01",  # fails mod-97
    f"DE89.3704{EN_DASH}0044.0532.0130.00",  # its separators mixed
    "AB12.CDEF.GHIJ.KLMN.OPQR", "v12.3456.7890.1234.5678", "semver 10.2.0-rc.1+build.5",
    "be24.566a.eefe.fa0b.5f9e.4487.7203.a3d",  # a hex id in groups
]


def _iban_of_wrong_length(separator: str = ".") -> str:
    """``DE`` and 20 digits (a German IBAN has 18) with valid check digits, in groups of four by
    ``separator``."""
    bban = "3704004405320130001234"[:20]
    check = 98 - int(bban + "1314" + "00") % 97  # D=13, E=14
    compact = f"DE{check:02d}{bban}"
    return separator.join(compact[i:i + 4] for i in range(0, len(compact), 4))


@pytest.mark.parametrize("address", SPELLED)
def test_an_address_spelled_out_is_redacted(address: str) -> None:
    assert redact_text(f"mail {address} please") == ("mail <EMAIL> please", 1)
    assert _spelled_out(address)


@pytest.mark.parametrize("address", SPELLED)
def test_an_address_spelled_out_in_json_text_is_redacted_and_the_text_stays_json(address: str) -> None:
    """``json.dumps`` writes letters such as "é" as escapes (``jos\\u00e9``): part of the address."""
    replaced, count = redact_text(json.dumps({"c": f"mail {address} please"}))
    assert (json.loads(replaced), count) == ({"c": "mail <EMAIL> please"}, 1)


def test_an_escaped_letter_in_json_text_is_no_character_of_an_address() -> None:
    text = json.dumps({"c": "caf\u00e9 at acme dot com"})
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), SPELLED_IN)
def test_an_address_in_lower_case_words_is_redacted_after_a_word_naming_one(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, expected.count("<EMAIL>"))


@pytest.mark.parametrize("text", NOT_SPELLED)
def test_at_and_dot_in_prose_code_and_markup_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("mail jane&commat;example.com", "mail <EMAIL>"),
    ("jane&commat;example&period;com", "<EMAIL>"),
    ("jane&#64;example&#46;co&#46;uk now", "<EMAIL> now"),
    ("jane&#46;doe&commat;example&#x2E;org", "<EMAIL>"),
    ("jane&period;doe@example.com", "<EMAIL>"),
    ('<a href="mailto:bob&commat;example&period;org">bob</a>', '<a href="mailto:<EMAIL>">bob</a>'),
])
def test_an_at_sign_and_dots_written_as_html_references_are_found(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


def test_the_commat_reference_passes_the_cheap_check() -> None:
    assert _encoded_at("a&commat;b") and not _encoded_at("AT&T &amp; more")


@pytest.mark.parametrize(("text", "expected"), [
    ("iban DE89.3704.0044.0532.0130.00", "iban <IBAN>"),
    (f"iban GB82{EN_DASH}WEST{EN_DASH}1234{EN_DASH}5698{EN_DASH}7654{EN_DASH}32 merci", "iban <IBAN> merci"),
    (f"IBAN: DE89{EN_DASH}3704{EN_DASH}0044{EN_DASH}0532{EN_DASH}0130{EN_DASH}00.", "IBAN: <IBAN>."),
    ("pay to de89.3704.0044.0532.0130.00 today", "pay to <IBAN> today"),  # in lower case too
    ("iban BE68.5390.0754.7034.OK", "iban <IBAN>.OK"),  # a short word after it is no group of it
    ("iban DE89.3704.0044.0532.0130.00.ok", "iban <IBAN>.ok"),
    (json.dumps({"iban": f"DE89{EN_DASH}3704{EN_DASH}0044{EN_DASH}0532{EN_DASH}0130{EN_DASH}00"}),
     '{"iban": "<IBAN>"}'),  # json.dumps escapes the en dashes
])
def test_an_iban_grouped_with_dots_or_en_dashes_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", [*NOT_IBANS, _iban_of_wrong_length(), *NOT_SPELLED])
def test_numbers_with_dots_or_en_dashes_are_no_iban_nor_address(text: str) -> None:
    assert redact_text(text, EMAIL_AND_IBAN) == (text, 0)


def test_an_iban_by_dots_of_its_country_length_only() -> None:
    """Grouped by dots, a candidate of valid check digits must have its country's length."""
    wrong = _iban_of_wrong_length()
    assert redact_text(wrong.replace(".", "")) == (wrong.replace(".", ""), 0)  # in one word too (see test_privacy_hex_ids)
    assert redact_text(wrong) == (wrong, 0)


def test_the_corpora_are_large_enough() -> None:
    assert len(SPELLED) + len(SPELLED_IN) >= 30 and len(NOT_SPELLED) + len(NOT_IBANS) >= 45


def test_only_the_chosen_kinds_apply_to_spelled_addresses() -> None:
    text = "mail jane [at] example [dot] com"
    assert redact_text(text, frozenset({"PHONE"})) == (text, 0)
    assert redact_text(text, frozenset({"EMAIL"})) == ("mail <EMAIL>", 1)


@pytest.mark.parametrize("text", ["You are a support agent. Where is my order?", json.dumps([{"content": "hi"}]),
                                  "print(x[0]) (note)", "dotted lines", "meet at noon"])
def test_text_without_a_spelled_at_skips_the_spelled_pass(text: str) -> None:
    assert not _spelled_out(text)


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet="@_-kxoeyJarsicAKISzPRVTEY _\n", max_size=40))
def test_the_plain_hint_check_is_the_substring_test_of_its_hints(text: str) -> None:
    assert _plain_hint(text) is _contains_any(text, _PLAIN_HINTS)


@pytest.mark.parametrize("hint", _PLAIN_HINTS)
def test_every_plain_hint_passes_the_plain_hint_check(hint: str) -> None:
    assert _plain_hint(f"plain words {hint} more words")


@pytest.mark.parametrize(("text", "expected"), [
    ("a [dot] " * 7500 + "[at]", "a [dot] " * 7499 + "a [dot] [at]"),
    ("a[dot]" * 10000 + "(at)", "a[dot]" * 10000 + "(at)"),
    ("x [at] " + "a." * 30000, "x [at] " + "a." * 30000),
    ("jane at " + "example dot " * 5000 + "zz", "jane at " + "example dot " * 5000 + "zz"),
    ("a&#46;" * 10000 + "b@example.com", "<EMAIL>"),
    ("DE89." + "1234." * 12000, "DE89." + "1234." * 12000),
    ("a.b " * 15000 + "mail x at example dot com", "a.b " * 15000 + "mail <EMAIL>"),
    ("email " + "me at home dot " * 4000 + "com", "email " + "me at home dot " * 4000 + "com"),
])
def test_long_adversarial_texts_are_redacted_as_expected(text: str, expected: str) -> None:
    """60 kB runs of the spelled and grouped forms' parts (each start of a run read once)."""
    assert redact_text(text) == (expected, expected.count("<"))


def test_those_forms_are_redacted_end_to_end(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    messages = [{"role": "user", "content": "write to jane [at] example [dot] com, IBAN DE89.3704.0044.0532.0130.00"}]
    with autotrace.tenant("t"), trace.get_tracer("third.party").start_as_current_span("chat") as span:
        span.set_attribute("llm.prompts", json.dumps(messages))
        span.set_attribute("contact", f"bob&commat;example&period;org / GB82{EN_DASH}WEST{EN_DASH}1234{EN_DASH}5698"
                                      f"{EN_DASH}7654{EN_DASH}32")
        span.set_attribute("note", "Look at the dot com bubble, find us at acme dot com")
    assert autotrace.flush(5)
    (received,) = rx.wait_for_spans(1)
    payload = b"".join(r.body for r in rx.requests)
    assert b"jane" not in payload and b"bob&commat;" not in payload and b"WEST" not in payload and b"3704" not in payload
    assert json.loads(received.attributes["llm.prompts"]) == [
        {"role": "user", "content": "write to <EMAIL>, IBAN <IBAN>"}]
    assert received.attributes["contact"] == "<EMAIL> / <IBAN>"
    assert received.attributes["note"] == "Look at the dot com bubble, find us at acme dot com"
    assert autotrace.stats()["redactions"] == 4
