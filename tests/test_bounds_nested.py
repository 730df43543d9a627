"""Values bounded whatever their shape: strings and bytes inside sequence and mapping attribute
values are held for redaction and cut at the size limit like plain strings, a structured value
keeps only the items within the limit, what redaction shortens still loses its held end, and a
secret longer than the margin straddling the cut loses its head too. Then detector gaps: IBANs in
lower case, timestamps read as card numbers, Stripe and Hugging Face keys, and an e-mail pattern
that took quadratic time. Through the real pipeline, against a loopback OTLP receiver."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from opentelemetry import trace

import autotrace
from autotrace import bounds
from autotrace.export.detectors import _has_digit_shape, redact_text
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant

LIMIT = 1024
MARK = bounds.TRUNCATION_MARK
CUT = "y" * (LIMIT - len(MARK.encode())) + MARK  # a long run of "y" cut at the limit
BIG = "y" * 1_000_000


def _export(rx: OtlpReceiver, attributes: dict[str, Any], own: bool, **options: Any) -> dict[str, Any]:
    """The attributes a span set with ``attributes`` is exported with (an autotrace span's or a
    third-party OpenTelemetry span's)."""
    install_one_tenant(rx, max_value_bytes=LIMIT, **options)
    with autotrace.tenant("t"):
        if own:
            with autotrace.start_span("s") as observation:
                for key, value in attributes.items():
                    observation.span.set_attribute(key, value)
        else:
            with trace.get_tracer("third.party").start_as_current_span("s") as span:
                span.set_attributes(attributes)
    assert autotrace.flush(10)
    (exported,) = rx.wait_for_spans(1)
    return exported.attributes


@pytest.mark.parametrize("own", [False, True], ids=["third-party-span", "observation"])
def test_strings_and_bytes_inside_structured_values_are_cut_at_the_limit(rx: OtlpReceiver, own: bool) -> None:
    attrs = _export(rx, {"list": ["short", BIG, "past the limit"], "nested": {"n": 1, "a": [{"b": BIG}]},
                         "bytes": BIG.encode(), "plain": BIG}, own)
    assert attrs["list"] == ["short", CUT]  # the items after it are past the value's size limit
    assert attrs["nested"] == {"n": 1, "a": [{"b": CUT}]}
    assert attrs["bytes"] == CUT.encode()
    assert attrs["plain"] == CUT
    assert autotrace.stats()["attributes_truncated"] == 4
    assert autotrace.stats()["attribute_items_dropped"] == 1


def test_a_string_nested_as_deep_as_redaction_reads_is_cut() -> None:
    value: Any = BIG
    for depth in range(bounds.MAX_VALUE_DEPTH):
        value = {f"k{depth}": value}
    held = bounds.hold_value(value, LIMIT)
    for depth in reversed(range(bounds.MAX_VALUE_DEPTH)):
        held = held[f"k{depth}"]
    assert held == "y" * (LIMIT + bounds.REDACTION_MARGIN) + bounds.HELD_MARK
    assert bounds.cut_value(held, LIMIT) == CUT


SECRETS = ["alice.private@example.com", "4111 1111 1111 1111", "sk-proj-" + "A1b2C3d4E5f6G7h8J9k0" * 2]


@pytest.mark.parametrize("secret", SECRETS)
def test_a_secret_straddling_the_limit_in_a_sequence_element_is_never_exported_even_partly(
        rx: OtlpReceiver, secret: str) -> None:
    values = {}
    for keep in range(1, len(secret), 3):  # the cut at the limit falls ``keep`` characters into it
        pad = LIMIT - len(MARK.encode()) - keep - 1
        values[f"v{keep}"] = ["short", "x" * pad + " " + secret + " and more text after it" * 4]
    attrs = _export(rx, values, own=False)
    for key in values:
        short, value = attrs[key]
        assert short == "short" and len(value.encode()) <= LIMIT and value.endswith(MARK)
        assert secret[:6] not in value and secret[-6:] not in value, value[-60:]


@pytest.mark.parametrize("own", [False, True], ids=["third-party-span", "observation"])
def test_a_long_sequence_or_mapping_keeps_the_items_within_the_size_limit(rx: OtlpReceiver,
                                                                          own: bool) -> None:
    # each item counts 8 and its length; the value itself 8: 93 items of three characters are
    # needed to use the 1024 bytes up (a mapping's key counts as an item too: 47 pairs)
    attrs = _export(rx, {"list": ["abc"] * 5000, "map": {f"{i:03}": "abc" for i in range(900)}}, own)
    assert attrs["list"] == ["abc"] * 93
    assert attrs["map"] == {f"{i:03}": "abc" for i in range(47)}
    assert autotrace.stats()["attribute_items_dropped"] == 5000 - 93 + 900 - 47
    assert "attributes_truncated" not in autotrace.stats()


def test_a_vector_of_floats_within_the_limit_is_kept_whole(rx: OtlpReceiver) -> None:
    """An embedding (1536 floats, as OpenInference records one) is far within the default limit."""
    vector = [i / 7 for i in range(1536)]
    install_one_tenant(rx)
    with autotrace.tenant("t"), trace.get_tracer("third.party").start_as_current_span("s") as span:
        span.set_attribute("embedding.vector", vector)
    assert autotrace.flush(10)
    assert rx.wait_for_spans(1)[0].attributes["embedding.vector"] == vector
    assert "attribute_items_dropped" not in autotrace.stats()


def test_a_value_that_holds_itself_is_replaced(rx: OtlpReceiver) -> None:
    cycle: list[Any] = ["x"]
    cycle.append(cycle)
    attrs = _export(rx, {"cycle": cycle, "ok": ["a"]}, own=True)
    assert attrs["cycle"] == "<REDACTION_FAILED>" and attrs["ok"] == ["a"]


#: An e-mail address redaction shortens tenfold: a value of them held past the limit becomes shorter
#: than a quarter of the limit, where the pipeline no longer looks for values to cut.
EMAIL = "a.very.long.private.local.part.of.an.address.for.jane.roe@example-mail-provider.com "


@pytest.mark.parametrize("own", [False, True], ids=["third-party-span", "observation"])
def test_a_held_value_that_redaction_shortens_below_a_quarter_of_the_limit_still_loses_its_held_end(
        rx: OtlpReceiver, own: bool) -> None:
    text = EMAIL * 40  # held cut 18 addresses and "a.very" in; redacted to 8 characters each
    attrs = _export(rx, {"plain": text, "list": [text]}, own)
    # what it held within the margin (its last 512 bytes, here all of it) is never exported
    assert attrs["plain"] == MARK and attrs["list"] == [MARK]
    assert autotrace.stats()["attributes_truncated"] == 2


def test_a_held_span_name_that_redaction_shortens_still_loses_its_held_end(rx: OtlpReceiver) -> None:
    install_one_tenant(rx, max_value_bytes=LIMIT)
    with autotrace.tenant("t"), trace.get_tracer("third.party").start_as_current_span(EMAIL * 40):
        pass
    assert autotrace.flush(10)
    assert rx.wait_for_spans(1)[0].name == MARK


def test_a_held_value_that_a_hook_shortens_still_loses_its_held_end(rx: OtlpReceiver) -> None:
    def squeeze(key: str, value: Any, span_type: str) -> Any:
        if isinstance(value, str):
            return value.replace("y" * 100, "y")
        return [squeeze(key, item, span_type) for item in value] if isinstance(value, list | tuple) else value

    text = "y" * 1600  # held cut at 1536 characters, which the hook makes 51
    attrs = _export(rx, {"plain": text, "list": [text]}, own=False, redact=[squeeze])
    assert attrs["plain"] == MARK and attrs["list"] == [MARK]


def test_a_cut_value_is_never_cut_again() -> None:
    """A value cut right after a space must not look held (``HELD_MARK`` starts with a space)."""
    value = "w" * (LIMIT - len(MARK.encode()) - 1) + " " + "z" * 2000
    cut = bounds.truncate(bounds.hold(value, LIMIT), LIMIT)
    assert cut == "w" * (LIMIT - len(MARK.encode()) - 1) + MARK
    assert bounds.truncate(cut, LIMIT) == cut


def _jwt(payload_bytes: int) -> str:
    """A signed JWT whose payload (claims naming a person) is about ``payload_bytes`` long."""
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": "jane.roe", "email": "jane.roe@example.com", "groups": ["g1234"] * (payload_bytes // 12)}
    return part({"alg": "RS256", "typ": "JWT"}) + "." + part(claims) + "." + "Sig0" * 86


@pytest.mark.parametrize("before", [1, 100, 400])
def test_a_secret_longer_than_the_margin_straddling_the_limit_is_never_exported_even_partly(
        rx: OtlpReceiver, before: int) -> None:
    """A JWT whose payload is longer than the redaction margin, starting ``before`` bytes before the
    cut: held cut inside its payload, the detector (which needs its three parts) cannot see it."""
    token = _jwt(1500)
    assert len(token) > 2 * bounds.REDACTION_MARGIN
    keep = LIMIT - len(MARK.encode())
    text = "x " * ((keep - before) // 2) + token + " and more text after it"
    attrs = _export(rx, {"plain": text, "list": [text], "header": "Authorization: " + token}, own=False)
    expected = "x " * ((keep - before) // 2)
    assert attrs["plain"] == expected.rstrip() + MARK and attrs["list"] == [expected.rstrip() + MARK]
    assert attrs["header"] == "Authorization:" + MARK
    assert "eyJ" not in str(attrs)


def test_a_long_run_that_ends_before_the_held_end_or_holds_no_digit_is_cut_at_the_limit() -> None:
    keep = LIMIT - len(MARK.encode())
    key = "ab12" * 200  # ends within the margin: seen whole by redaction
    for value in (key + " plain words after it" * 100, "m" * 5000, "=" * 5000):
        assert bounds.truncate(bounds.hold(value, LIMIT), LIMIT) == value[:keep] + MARK


@pytest.mark.parametrize(("text", "expected"), [
    ("iban de89370400440532013000 ok", "iban <IBAN> ok"),
    ("iban de89 3704 0044 0532 0130 00.", "iban <IBAN>."),
    ("gb82 west 1234 5698 7654 32 is mine", "<IBAN> is mine"),
    ("De89 3704 0044 0532 0130 00", "<IBAN>"),
    ("nl91abna0417164300", "<IBAN>"),
    # written in groups, a match runs into a short word after it: the IBAN is the part that checks out
    ("es91 2100 0418 4502 0005 1332 ok", "<IBAN> ok"),
    ("IBAN BE68 5390 0754 7034 OK", "IBAN <IBAN> OK"),
    ("AT61 1904 3002 3457 3201 2024 was paid", "<IBAN> 2024 was paid"),
])
def test_an_iban_in_any_case_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", [
    "de88370400440532013000",  # fails mod-97
    "gb82 west 1234 5698 7654 33",
    "ab12 cdef ghij klmn abcd",  # no digits to speak of
    "be24566aee8fefa0b5f9e44877203a3d",  # a hex id shaped like one
    "sha256 ab12345678901234567890 done",
])
def test_lower_case_look_alikes_of_an_iban_stay(text: str) -> None:
    assert redact_text(f"x {text} y") == (f"x {text} y", 0)


def test_lower_case_ibans_pass_the_cheap_checks_and_text_without_digits_skips_them() -> None:
    for iban in ("de89370400440532013000", "gb82 west 1234 5698 7654 32", "nl91abna0417164300"):
        assert _has_digit_shape(f"see {iban} here")
    assert not _has_digit_shape("de ab cd efgh ijkl mnop qrst uvwx yz, sha two five six")


def test_a_lower_case_iban_is_redacted_in_an_exported_span(rx: OtlpReceiver) -> None:
    values = {"payee": "pay to de89370400440532013000 today", "ids": ["gb82west12345698765432"]}
    attrs = _export(rx, values, own=False)
    assert attrs["payee"] == "pay to <IBAN> today" and attrs["ids"] == ["<IBAN>"]


def test_a_long_word_in_a_text_with_an_address_is_redacted_in_linear_time() -> None:
    """Tried from every position of a long run of its characters, the e-mail pattern read to the
    run's end each time: a 64 kB word and an address took about 20 seconds, stalling the pipeline."""
    text = "x" * 65_000 + " mail alice@example.com"
    started = time.perf_counter()
    assert redact_text(text) == ("x" * 65_000 + " mail <EMAIL>", 1)
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("text", [
    '{"timestamp": 1734751217988}',  # epoch milliseconds, Luhn-valid
    '{"start_us": 1785066292879558}',  # microseconds
    '{"time_unix_nano": 1719636400344535784}',  # nanoseconds
])
def test_an_epoch_timestamp_is_not_a_card_number(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("card 4111 1111 1111 1111", "card <CREDIT_CARD>"),
    ("uatp 135410014004955", "uatp <CREDIT_CARD>"),  # the cards that start with a 1 have 15 digits
    ("stripe sk_live_51HqLyjWDarjtT1zdp7dcXYZab", "stripe <API_KEY>"),
    ("restricted rk_live_51HqLyjWDarjtT1zdp7dcXYZ", "restricted <API_KEY>"),
    ("test key sk_test_4eC39HqLyjWDarjtT1zdp7dc", "test key <API_KEY>"),
    ("token hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "token <API_KEY>"),
])
def test_common_secrets_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", ["pk_live_51HqLyjWDarjtT1zdp7dcXYZ is public", "hf_hub_download(repo_id)",
                                  "mask_live_feed and disk_test_results"])
def test_look_alikes_of_those_secrets_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_strings_inside_event_and_link_attribute_lists_are_cut_at_the_limit(rx: OtlpReceiver) -> None:
    """Event and link attributes holding lists are bounded like span attributes."""
    install_one_tenant(rx, max_value_bytes=LIMIT)
    with trace.get_tracer("third.party").start_as_current_span("linked") as other:
        linked = other.get_span_context()
    with autotrace.tenant("t"), trace.get_tracer("third.party").start_as_current_span(
            "s", links=[trace.Link(linked, {"list": ["short", BIG]})]) as span:
        span.add_event("e", {"list": ["short", BIG], "n": 3})
    assert autotrace.flush(10)
    exported = next(s for s in rx.wait_for_spans(2) if s.name == "s")
    assert exported.events == [{"name": "e", "attributes": {"list": ["short", CUT], "n": 3}}]
    assert exported.links[0]["attributes"] == {"list": ["short", CUT]}


HEX_IDS = ["55e86d714a3c7986668122729095ea70", "91d54d66-2487-4209-9051-716b7a1ba2e9", "978166128960652f8f8b65a6",
           "6284153653724b27", "9eb458aa5c0841507b004fc9602459481960cfff", "f21403714847481bb6d39fc447551a2b"]


@pytest.mark.parametrize("text", HEX_IDS)
def test_hex_ids_holding_a_luhn_valid_run_of_digits_are_not_cards(text: str) -> None:
    """Trace, span, Mongo and commit ids whose digits would pass as a card number (about one in
    five hundred did) are words: a card number never sits inside one."""
    assert redact_text(text) == (text, 0)
    assert redact_text(f"call {text} failed") == (f"call {text} failed", 0)


def test_hex_ids_in_lower_case_are_not_ibans_unless_of_their_countrys_length() -> None:
    """A lower-case candidate must have its country's IBAN length: random hex ids pass mod-97 one
    time in 97, and none of them is 16, 20, 22, 23 or 24 characters of a hex country (BE, EE, BA,
    DE, AE, AD) with the digits an IBAN has."""
    hex_iban_shaped = "de12" + "0" * 28  # 32 characters: a trace id's length, no country's
    rearranged = hex_iban_shaped[4:] + "de00"
    check = 98 - int("".join(str(int(ch, 36)) for ch in rearranged)) % 97
    candidate = f"de{check:02d}" + "0" * 28
    assert redact_text(candidate) == (candidate, 0)
    assert redact_text(candidate.upper()) == (candidate.upper(), 0)  # in capitals too, in one word
    spaced = " ".join(candidate.upper()[i:i + 4] for i in range(0, 32, 4))
    assert redact_text(spaced) == ("<IBAN>", 1)  # in groups of four in capitals, the shape alone decides
    assert redact_text("de89370400440532013000") == ("<IBAN>", 1)  # a German IBAN is 22 characters
