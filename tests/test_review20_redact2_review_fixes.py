"""Review 20 (second pass) of today's redaction changes: an IBAN-like code of letters and short numbers
("AB12 3456 7890 ...") was searched again from each of its groups of digits (three times the candidates
judged, twice the time on 64 kB); a ``Set-Cookie`` value joined by a client from several headers
(``httpx``, ``requests``: ", ") had only its first cookie redacted; the count of a text holding both a
``Cookie`` and an ``Authorization`` header lost the cookies'; JSON text with a placeholder in a string
after ", " or ": " was parsed three times, and with more than 16 placeholders where numbers were, one of
them in such a string, was left no JSON; code's working directory (``pwd = os.getcwd()``) was read as a
connection string's password (``Pwd=...``)."""

from __future__ import annotations

import json

import httpx
import pytest

import autotrace
from autotrace.export import _json_values, detectors
from autotrace.export.detectors import redact_text
from autotrace.testing.otlp_receiver import OtlpReceiver


def test_an_iban_like_code_without_a_card_is_judged_once_per_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    judged: list[str] = []
    iban_in = detectors._iban_in

    def spy(value: str) -> tuple[str, str]:
        judged.append(value)
        return iban_in(value)

    monkeypatch.setattr(detectors, "_iban_in", spy)
    text = "AB12 3456 7890 " * 60
    assert redact_text(text) == (text, 0)
    assert judged == ["AB12 3456 7890 AB12 3456 7890 AB12 3456 7890"] * 20


@pytest.mark.parametrize(("text", "expected"), [
    ("ref AB12 CDEF GHIJ KLMN OPQR STUV 4111 1111 1111 1111 x", "ref AB12 CDEF GHIJ KLMN OPQR STUV <CREDIT_CARD> x"),
    ("ZZ12 3456 7890 CDEF 4111 1111 1111 1111", "ZZ12 3456 7890 CDEF <CREDIT_CARD>"),
    ("x DE89 4111 1111 1111 1111", "x DE89 <CREDIT_CARD>"),
])
def test_a_card_after_an_iban_like_prefix_is_still_found(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


def _joined_set_cookie() -> str:
    """Two ``Set-Cookie`` headers as ``httpx`` gives them in a mapping: one value, joined by ", "."""
    headers = httpx.Headers([("set-cookie", "sid=abc123def456; Path=/; HttpOnly"),
                             ("set-cookie", "session=xyz789abc123; Domain=api2.example.com; Path=/"),
                             ("set-cookie", "pref=s%3Axyz789abc123; Expires=Wed, 21 Oct 2026 07:28:00 GMT")])
    return dict(headers)["set-cookie"]


def test_each_cookie_of_a_joined_set_cookie_header_is_redacted() -> None:
    text = json.dumps({"set-cookie": _joined_set_cookie()})
    assert redact_text(text) == (json.dumps({"set-cookie": (
        "sid=<API_KEY>; Path=/; HttpOnly, session=<API_KEY>; Domain=api2.example.com; Path=/, "
        "pref=<API_KEY>; Expires=Wed, 21 Oct 2026 07:28:00 GMT")}), 3)


def test_an_exported_response_headers_mapping_holds_no_cookie() -> None:
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-x", secret_key="sk-lf-xsecret",
                          unknown_tenant="default", integrations=(), export_interval=0.05)
        with autotrace.start_tool("login", arguments={"user": "jane"}) as tool:
            tool.set_output({"status": 200, "headers": {"set-cookie": _joined_set_cookie()}})
        assert autotrace.flush(10)
        (span,) = rx.wait_for_spans(1)
    output = json.loads(span.attributes["langfuse.observation.output"])
    assert output["headers"]["set-cookie"].count("<API_KEY>") == 3
    assert "xyz789abc123" not in span.attributes["langfuse.observation.output"]


@pytest.mark.parametrize(("text", "expected"), [
    ("Cookie: theme=dark; flag; sid=abc123def456ghi", "Cookie: theme=dark; flag; sid=<API_KEY>"),  # after a bare flag
    ("Cookie: sid=abc123def456\nAuthorization: Token xyz789abc123def", "Cookie: sid=<API_KEY>\nAuthorization: Token <API_KEY>"),
])
def test_cookie_values_and_counts(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 2 if "Authorization" in text else 1)


@pytest.mark.parametrize("text", [
    "The cookie: chocolate chip. Fortune cookie: a=1",
    "cookie: {maxAge: 3600, secure: true}",
    "Set-Cookie: theme=dark; Domain=api2.example.com; Path=/",  # an attribute's value is no secret
])
def test_cookie_words_without_a_session_value_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_a_placeholder_in_a_json_string_costs_no_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[int] = []
    loads = json.loads
    monkeypatch.setattr(_json_values.json, "loads", lambda text: (parsed.append(len(text)), loads(text))[1])
    text = json.dumps({"rows": [{"id": i, "name": f"row {i}"} for i in range(50)], "who": "contact: a.b@example.com"})
    assert redact_text(text) == (text.replace("a.b@example.com", "<EMAIL>"), 1)
    assert parsed == []


def test_many_numbers_replaced_beside_one_in_a_string_leave_json() -> None:
    text = json.dumps({"note": "paid with, 4111111111111111", "cards": [4111111111111111] * 20})
    redacted, replaced = redact_text(text)
    assert json.loads(redacted) == {"note": "paid with, <CREDIT_CARD>", "cards": ["<CREDIT_CARD>"] * 20}
    assert replaced == 21


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a": "x\\\\", "b": 4111111111111111}', {"a": "x\\", "b": "<CREDIT_CARD>"}),  # an escaped backslash ends a string
    ('{"a": "say \\"hi, <B>\\"", "b": 4111111111111111}', {"a": 'say "hi, <B>"', "b": "<CREDIT_CARD>"}),
    ('{"<CREDIT_CARD>": 1, "b": [4111111111111111]}', {"<CREDIT_CARD>": 1, "b": ["<CREDIT_CARD>"]}),
])
def test_strings_with_escapes_and_angle_brackets_are_read_as_json(text: str, expected: object) -> None:
    assert json.loads(redact_text(text)[0]) == expected


@pytest.mark.parametrize("text", [
    "pwd = os.getcwd()", "pwd = Path.cwd()", "pwd = process.cwd()", "pwd: ./build/output", "PWD=$(pwd)",
    'os.environ["PWD"] = "../app"',
])
def test_a_working_directory_is_no_password(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_a_connection_string_password_is_still_redacted() -> None:
    assert redact_text("Server=db;Uid=sa;Pwd=S3cret!x;") == ("Server=db;Uid=sa;Pwd=<API_KEY>;", 1)
