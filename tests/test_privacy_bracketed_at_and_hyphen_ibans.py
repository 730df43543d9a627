"""Addresses spelled out with "at" in curly or angle brackets (``jane{at}example{dot}com``,
``jane <at> example <dot> com``, its brackets escaped as ``\\u003c`` by some JSON encoders), spelled
out in capitals or capitalised, IBANs grouped with hyphens (checked, and no card, phone or SSN lost
to a hyphen-grouped candidate that is none), and the assignment detector found from its key words;
with corpora of prose, markup, code, templates, serials and dates that must stay as they are."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace

import autotrace
from autotrace.export.detectors import _spelled_out, redact_text
from autotrace.export.detectors_assigned import assignment, redact_assignments
from autotrace.export.detectors_spelled import _spelled_email
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant
from tests.test_privacy_spelled_at_and_dotted_ibans import _iban_of_wrong_length


def _go_json(value: object) -> str:
    """JSON as encoders that escape HTML characters write it (Go's ``encoding/json``, some JS ones)."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e")


#: Addresses spelled out with brackets other than square and round ones, or capitalised: each the
#: whole of what is replaced in "mail {address} please".
SPELLED = [
    "jane{at}example{dot}com", "jane {at} example {dot} com", "jane {at} example.com", "jane{AT}example{DOT}org",
    "jane <at> example <dot> com", "jane<at>example<dot>co<dot>uk", "jane <AT> example.io", "jane.doe<at>example.com",
    "jane{dot}doe{at}example{dot}de", "jane <dot> doe <at> example <dot> org", "jane {at} example [dot] com",
    "jos\u00e9 {at} exemple {dot} fr", "Jane [At] Example [Dot] Com", "jane (At) example (Dot) com", "Jane{At}Example.com",
    "Jane <At> Example <Dot> Net",
]
#: Spelled out in capitals: redacted, as in lower case, with an address-like name or after a word naming one.
CAPITALS = [
    ("email: JANE AT EXAMPLE DOT COM", "email: <EMAIL>"), ("JANE.DOE AT EXAMPLE DOT COM", "<EMAIL>"),
    ("JANE99 AT EXAMPLE DOT ORG", "<EMAIL>"), ("WRITE TO JANE_DOE AT EXAMPLE DOT CO DOT UK", "WRITE TO <EMAIL>"),
    ("CONTACT SALES AT ACME DOT IO", "CONTACT <EMAIL>"), ("Jane.Doe At Example Dot Com", "<EMAIL>"),
    ("mail Jane At Example Dot Com", "mail <EMAIL>"), ("JANE.DOE@EXAMPLE.COM", "<EMAIL>"),
    ("Jane@Example.Co.UK", "<EMAIL>"), ("mail JANE_DOE@EXAMPLE.CO.UK now", "mail <EMAIL> now"),
    ("JANE%40EXAMPLE.COM", "<EMAIL>"), ("JANE&commat;EXAMPLE&period;COM", "<EMAIL>"),
]
#: Markup, code, templates and prose with "at", "<at>", "{at}" that are no address.
NOT_SPELLED = [
    "Meet <at> noon", "see <a>link</a> at home", "<at>value</at>", "<root><at>home.example.com</at></root>",
    "std::vector<at> v; v.size()", "template <at> class", "msg = '{user}{at}{domain}.com'", "'{at}'.format(at='@')",
    "f'{name}{at}{host}'", "Hello {name}, reply {at} {email}.com", "x = d{at}.items()", "<at> and <dot> tokens",
    "<AT> <DOT>", "{AT}", "version 1.2.3 <at> build 2024-05-17", "v1.2 {at} 3.4", "a <at> b", "x <at> y <dot> 1",
    "<td>at</td><td>example.com</td>", "<b>at</b> example.com", "if (a<at && at>b) x.com", "arr<at>.size()",
    "map<at, dot>", "Reply <at> 5pm.", "<at> {at} [at] (at)", _go_json({"html": "<p>Meet <at> noon</p>", "t": "{at}"}),
    # in capitals or capitalised, with nothing of an address: prose, headlines, a website read out
    "LOOK AT THE DOT", "VISIT US AT ACME DOT COM", "BUY NOW AT SHOP DOT COM", "STAY AT HOME DOT COM",
    "Meet Us At Acme Dot Com", "Look At The Dot", "We Work At Google Dot Com", "Dot At Noon", "JANE AT EXAMPLE DOT COM",
]
EXAMPLE_IBAN = "DE89-3704-0044-0532-0130-00"
IBANS = [
    (f"iban {EXAMPLE_IBAN}", "iban <IBAN>"), ("IBAN: GB82-WEST-1234-5698-7654-32.", "IBAN: <IBAN>."),
    ("pay to de89-3704-0044-0532-0130-00 today", "pay to <IBAN> today"), ("fr76-3000-6000-0112-3456-7890-189", "<IBAN>"),
    ("iban BE68-5390-0754-7034-OK", "iban <IBAN>-OK"), (f"iban {EXAMPLE_IBAN}-ok", "iban <IBAN>-ok"),
    (json.dumps({"iban": EXAMPLE_IBAN}), '{"iban": "<IBAN>"}'),
    (f"{EXAMPLE_IBAN}, card 4111-1111-1111-1111, tel 415-555-0132, ssn 123-45-6789",
     "<IBAN>, card <CREDIT_CARD>, tel <PHONE>, ssn <US_SSN>"),
]
#: Hyphenated numbers, serials, ids and dates that are no IBAN.
NOT_IBANS = [
    "order DE-2024-0001", "invoice AB-12-3456-7890", "serial SN12-ABCD-EFGH-IJKL", "license ABCD-EFGH-IJKL-MNOP",
    "uuid 123e4567-e89b-12d3-a456-426614174000", "id ab12-cd34-ef56-7890-abcd", "date 2024-05-17",
    "on 17-05-2024 at 10:30", "ISO 2024-05-17T10:30:00Z", "part XY12-3456-7890-1234-56", "MSFT-2024-ABCD-1234-5678",
    "DE89-3704-0044-0532-0130-01",  # fails mod-97
    "GB82-WEST-1234-5698-7654-33", "DE89-3704-0044.0532-0130-00",  # its separators mixed
    "key DE12-3456", "v12-3456-7890-1234-5678", "be24-566a-eefe-fa0b-5f9e-4487-7203-a3d",  # a hex id in groups
]


@pytest.mark.parametrize("address", SPELLED)
def test_an_address_spelled_out_with_curly_or_angle_brackets_or_capitalised_is_redacted(address: str) -> None:
    assert redact_text(f"mail {address} please") == ("mail <EMAIL> please", 1)
    assert _spelled_out(address)


@pytest.mark.parametrize("address", SPELLED)
@pytest.mark.parametrize("encode", [json.dumps, _go_json], ids=["json", "html-escaped-json"])
def test_those_addresses_in_json_text_are_redacted_and_the_text_stays_json(address: str, encode: object) -> None:
    """Some encoders write ``<`` and ``>`` as ``\\u003c`` and ``\\u003e``: brackets all the same."""
    assert callable(encode)
    replaced, count = redact_text(encode({"c": f"mail {address} please"}))
    assert (json.loads(replaced), count) == ({"c": "mail <EMAIL> please"}, 1)


def test_escaped_angle_brackets_in_upper_case_hex_are_brackets_too() -> None:
    text = '{"c": "jane \\u003Cat\\u003E example \\u003Cdot\\u003E com"}'
    assert redact_text(text) == ('{"c": "<EMAIL>"}', 1)


@pytest.mark.parametrize(("text", "expected"), CAPITALS)
def test_an_address_in_capitals_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", NOT_SPELLED)
def test_at_in_markup_code_templates_and_prose_stays(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), IBANS)
def test_an_iban_grouped_with_hyphens_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, expected.count("<"))


@pytest.mark.parametrize("text", [*NOT_IBANS, _iban_of_wrong_length("-"), _iban_of_wrong_length("-").lower()])
def test_hyphenated_serials_ids_dates_and_near_misses_are_no_iban(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_an_iban_by_hyphens_of_its_country_length_only() -> None:
    wrong = _iban_of_wrong_length("-")
    assert redact_text(wrong.replace("-", "")) == (wrong.replace("-", ""), 0)  # in one word too
    assert redact_text(wrong) == (wrong, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("GB19-7503-6188-541-324-0647", "GB19-7503-6188-<PHONE>"),  # the candidate "GB19-7503-6188-541" is none
    ("ref SN49-1083-4577-791-342-0039 ok", "ref SN49-1083-4577-<PHONE> ok"),
    ("AB59-1655-3724-2681-0005-452-800-3287", "AB59-1655-3724-2681-0005-<PHONE>"),
    ("ID30-6809-6307-481-457-3905-ok-4111-1111-1111-1111", "ID30-6809-6307-<PHONE>-ok-<CREDIT_CARD>"),
])
def test_what_a_hyphen_grouped_candidate_that_is_no_iban_took_is_found_as_before(text: str, expected: str) -> None:
    """Cards, phones and SSNs use hyphens too: a candidate IBAN that is none hides none of them."""
    assert redact_text(text) == (expected, expected.count("<"))
    assert redact_text(text, frozenset({"PHONE", "CREDIT_CARD"})) == (expected, expected.count("<"))


#: Pieces of assignments: key words in any case, separators, quotes (escaped too), values, and
#: characters that end a value or are whitespace to ``\\s`` only (``\\x1c``).
_ASSIGNMENT_PIECES = st.sampled_from([
    "api", "API", "_", "-", "key", "KEY", "Key", "access", "secret", "token", "TOKEN", "password", "passwd", "PassWord",
    "passw", "=", ":", " ", '"', "'", "\\", "x", "abcdefgh", "12345678", ",", ";", "}", "<", "\n", "\x1c", "\x00",
    "monkey", "apikey", "tokens", '\\"', "ab"])


@settings(max_examples=3000, deadline=None)
@given(st.lists(_ASSIGNMENT_PIECES, max_size=16).map("".join))
def test_assignments_found_from_their_key_words_are_those_the_expression_finds(text: str) -> None:
    assert redact_assignments(text) == assignment(False).subn(r"\g<prefix><API_KEY>", text)


@pytest.mark.parametrize(("text", "expected"), [
    ("\u017fecret=hunter2hunter2 token: abcdefgh", "\u017fecret=<API_KEY> token: <API_KEY>"),  # a long s: "s"
    ("caf\u00e9 api_key=sk12345678 ok", "caf\u00e9 api_key=<API_KEY> ok"),
    ('{"access-key": "AKIA12345678", "max_tokens": 512, "c": "{\\"password\\": \\"hunter22\\"}"}',
     '{"access-key": "<API_KEY>", "max_tokens": 512, "c": "{\\"password\\": \\"<API_KEY>\\"}"}'),
])
def test_assignments_are_found_in_any_text(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, expected.count("<API_KEY>"))


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(["jane", "x", " ", ".", "at", "AT", "At", "dot", "DOT", "Dot", "[", "]", "(", ")", "{",
                                 "}", "<", ">", "\\u003c", "\\u003E", "com", "io", "mail "]), max_size=14).map("".join))
def test_the_spelled_check_passes_every_text_the_spelled_pattern_matches(text: str) -> None:
    for ascii_text in (True, False):
        if _spelled_email(ascii_text).search(text) is not None:
            assert _spelled_out(text)


@pytest.mark.parametrize("text", ["You are a support agent. Where is my order?", json.dumps([{"content": "hi"}]),
                                  "print(x[0]) {y} <p>z</p> (note)", "dotted lines", "meet at noon", "a > b"])
def test_text_without_a_spelled_at_skips_the_spelled_pass(text: str) -> None:
    assert not _spelled_out(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("a{dot}" * 10000 + "{at}", "a{dot}" * 10000 + "{at}"),
    ("a<dot>" * 10000 + "<at>", "a<dot>" * 10000 + "<at>"),
    ("a <dot> " * 7500 + "<at>", "a <dot> " * 7500 + "<at>"),
    ("a\\u003cdot\\u003e" * 6000 + "x", "a\\u003cdot\\u003e" * 6000 + "x"),
    ("x\\u003cat\\u003e" + "a\\u003cdot\\u003e" * 6000 + "1", "x\\u003cat\\u003e" + "a\\u003cdot\\u003e" * 6000 + "1"),
    ("x {at} " + "a." * 30000, "x {at} " + "a." * 30000),
    ("jane <at> " + "example <dot> " * 4000 + "1", "<EMAIL> <dot> 1"),
    ("jane At " + "example Dot " * 5000 + "zz", "jane At " + "example Dot " * 5000 + "zz"),
    ("JANE AT " + "EXAMPLE DOT " * 5000 + "ZZ", "JANE AT " + "EXAMPLE DOT " * 5000 + "ZZ"),
    ("DE89-" + "1234-" * 12000, "DE89-" + "1234-" * 12000),
    ("AB12-3456-7890-1234-" * 3000, "AB12-3456-7890-1234-" * 3000),
    ("api_key=" * 7000, "api_key=" + "<API_KEY>"),
    ("password: " * 6000, "password: <API_KEY> " * 3000),
])
def test_long_adversarial_texts_are_redacted_as_expected(text: str, expected: str) -> None:
    """60 kB runs of the new forms' parts (each start of a run read once: linear)."""
    assert redact_text(text) == (expected, len(re.findall("<[A-Z_]+>", expected)))


def test_the_new_forms_are_redacted_end_to_end(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    messages = [{"role": "user", "content": "write to jane <at> example <dot> com, IBAN GB82-WEST-1234-5698-7654-32"}]
    with autotrace.tenant("t"), trace.get_tracer("third.party").start_as_current_span("chat") as span:
        span.set_attribute("llm.prompts", _go_json(messages))
        span.set_attribute("contact", f"bob{{at}}example.org / JANE.DOE AT EXAMPLE DOT COM / {EXAMPLE_IBAN}")
        span.set_attribute("note", "<at>value</at> order DE-2024-0001 VISIT US AT ACME DOT COM")
    assert autotrace.flush(5)
    (received,) = rx.wait_for_spans(1)
    payload = b"".join(r.body for r in rx.requests)
    assert b"jane" not in payload and b"bob" not in payload and b"WEST" not in payload and b"3704" not in payload
    assert json.loads(received.attributes["llm.prompts"]) == [
        {"role": "user", "content": "write to <EMAIL>, IBAN <IBAN>"}]
    assert received.attributes["contact"] == "<EMAIL> / <EMAIL> / <IBAN>"
    assert received.attributes["note"] == "<at>value</at> order DE-2024-0001 VISIT US AT ACME DOT COM"
    assert autotrace.stats()["redactions"] == 5
