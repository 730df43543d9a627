"""UUIDs and W3C traceparents whose groups happen to be all digits are no phone number and no card:
a LlamaIndex node id ("4b31ab3b-0292-4192-9481-ba1c4dbed534") once came out of the export as
"4b31ab3b-<PHONE>-…". A phone or card next to such an id is still found."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable

import pytest

from autotrace.export.detectors import redact_text

#: Seen redacted before: a national phone (0292 4192 9481) and a Luhn-valid card (9491 2727 3229 9146)
SEEN = ["4b31ab3b-0292-4192-9481-ba1c4dbed534", "758587d1-3390-596f-9491-272732299146",
        "5b750aca-0364-4365-8245-f9559286146d"]
HYPHEN_LIKE = ("\u2011", "\u2012", "\u2212")


def _digit_heavy(rng: random.Random, length: int) -> str:
    """Hex digits, nine in ten of them decimal: where a phone or card shape is likely."""
    return "".join(rng.choice("0123456789" if rng.random() < 0.9 else "abcdef") for _ in range(length))


@pytest.mark.parametrize("uid", SEEN)
@pytest.mark.parametrize("written", [str, str.upper, lambda u: f"node {u} found", lambda u: json.dumps({"id": u}),
                                     lambda u: f"ids: {u},{u}"])
def test_a_uuid_of_digit_groups_stays(uid: str, written: Callable[[str], str]) -> None:
    text = written(uid)
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize("hyphen", HYPHEN_LIKE)
def test_a_uuid_written_with_a_hyphen_like_character_stays(hyphen: str) -> None:
    for uid in SEEN:
        text = uid.replace("-", hyphen)
        assert redact_text(text) == (text, 0)


def test_no_uuid_is_redacted() -> None:
    """Random UUIDs, and ones whose groups are mostly digits (where a phone or card shape is likely)."""
    rng = random.Random(20261203)
    uids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(5000)]
    uids += ["-".join(_digit_heavy(rng, n) for n in (8, 4, 4, 4, 12)) for _ in range(20000)]
    redacted = [(uid, out) for uid in uids if (out := redact_text(f"id {uid}"))[1]]
    assert redacted == []


@pytest.mark.parametrize(("text", "expected"), [
    ("call 0292-4192-9481 about 4b31ab3b-0292-4192-9481-ba1c4dbed534",
     "call <PHONE> about 4b31ab3b-0292-4192-9481-ba1c4dbed534"),
    ("4b31ab3b-0292-4192-9481-ba1c4dbed534 card 4111 1111 1111 1111",
     "4b31ab3b-0292-4192-9481-ba1c4dbed534 card <CREDIT_CARD>"),
    ("758587d1-3390-596f-9491-272732299146 card-4111-1111-1111-1111",
     "758587d1-3390-596f-9491-272732299146 card-<CREDIT_CARD>"),
    # not a UUID (a group of 16 before it): its digits are read as before
    ("aaaaaaaa4b31ab3b-0292-4192-9481-ba1c4dbed534", "aaaaaaaa4b31ab3b-<PHONE>-ba1c4dbed534"),
    ("tel 0292-4192-9481", "tel <PHONE>"),
])
def test_values_next_to_a_uuid_are_still_found(text: str, expected: str) -> None:
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize("text", ["tel 12345678-1234-5678-9012-123456789012", "phone: 4b31ab3b-0292-4192-9481-ba1c4dbed534",
                                  "call me at 02924192-0292-4192-9481-ba1c4dbed534"])
def test_a_uuid_after_a_phone_word_stays(text: str) -> None:
    assert redact_text(text) == (text, 0)


#: A parent id read as a card before (after a letter and a hyphen, with "-01" as a last group)
TRACEPARENTS = ["00-1771251210987407121464e18251b37a-3096243651886156-01",
                "00-13364957d5042021886fefa16234101d-3981187879097039-01"]


@pytest.mark.parametrize("traceparent", TRACEPARENTS)
def test_a_traceparent_of_digit_groups_stays(traceparent: str) -> None:
    for text in (traceparent, f"traceparent: {traceparent}", json.dumps({"traceparent": traceparent})):
        assert redact_text(text) == (text, 0)


def test_no_traceparent_is_redacted() -> None:
    rng = random.Random(3)
    parents = [f"00-{_digit_heavy(rng, 32)}-{_digit_heavy(rng, 16)}-01" for _ in range(20000)]
    assert [p for p in parents if redact_text(f"tp {p}")[1]] == []


def test_a_card_after_a_traceparent_is_still_found() -> None:
    text = f"{TRACEPARENTS[0]} card 4111-1111-1111-1111"
    assert redact_text(text)[0] == f"{TRACEPARENTS[0]} card <CREDIT_CARD>"


#: ULIDs (Crockford base32 in capitals) that passed mod-97 as IBANs of no country ("QS", "DV") or of
#: a country whose IBAN has another length
ULIDS = ["DV0055B7ZKHEXNX5FRVZF95EF8", "QS12DV03GYDZDXZ9QD5ED54MEP", "WM36JS7H1A21TQG6TC1WF3X1SC",
         "MD63Z0V2WGMC21AX6KJVRTMBMC", "BR06D3636D1W4P8NHY8AFNSYB1"]


@pytest.mark.parametrize("ulid", ULIDS)
def test_a_code_in_capitals_in_one_word_is_an_iban_only_of_its_countrys_length(ulid: str) -> None:
    assert redact_text(f"id {ulid}") == (f"id {ulid}", 0)


@pytest.mark.parametrize("iban", ["DE89370400440532013000", "GB82WEST12345698765432", "GB82 WEST 1234 5698 7654 32",
                                  "de89370400440532013000", "DE89-3704-0044-0532-0130-00"])
def test_an_iban_is_still_found(iban: str) -> None:
    assert redact_text(f"pay {iban} now") == ("pay <IBAN> now", 1)


def test_an_iban_of_a_country_not_in_the_registry_is_found_in_one_word() -> None:
    """Countries whose banks use IBANs the registry does not list (Algeria, Morocco ...) have no length here."""
    bban = "0002100001113000000570"
    check = 98 - int(bban + "1335" + "00") % 97  # D=13, Z=35
    assert redact_text(f"DZ{check:02d}{bban}") == ("<IBAN>", 1)
