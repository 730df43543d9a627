"""Review 21, critique of the redaction gaps' fixes: sshpass's ``-p`` only where it is sshpass's own (a
``-p`` of the command it runs is a port), a value on the line after an empty key that ends in base64
padding or holds a colon still replaced, and the word "pass" in prose costs no search for assignments."""

from __future__ import annotations

import json

import pytest

from autotrace.export import detectors_assigned
from autotrace.export._json_values import quote_bare_placeholders
from autotrace.export.detectors import redact_text


@pytest.mark.parametrize("text", [
    "sshpass -e ssh -p 2222 user@host",
    "sshpass -f ~/.pw ssh -p 2222 host",
    "sshpass -d 3 ssh host -p 22",
    "sshpass ssh -p 2222 host",
    "sshpass -e ssh -o StrictHostKeyChecking=no -p 2222 user@host",
    "sshpass -e rsync -e 'ssh -p 2222' a host:b",
])
def test_a_port_of_the_command_sshpass_runs_stays(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("sshpass -v -p hunter22 ssh host", "sshpass -v -p <API_KEY> ssh host"),
    ("sshpass -P assword: -p hunter22 ssh host", "sshpass -P assword: -p <API_KEY> ssh host"),
    ("sshpass -p hunter22 ssh -p 2222 host; sshpass -p other22 scp x y",
     "sshpass -p <API_KEY> ssh -p 2222 host; sshpass -p <API_KEY> scp x y"),
])
def test_sshpass_own_password_is_replaced(text: str, expected: str) -> None:
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Your API token:\nQWxhZGRpbjpvcGVuIHNlc2FtZQabcdefgh12==", "Your API token:\n<API_KEY>"),
    ("SECRET_KEY=\nZmVybmV0a2V5MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG0=", "SECRET_KEY=\n<API_KEY>"),
    ("password:\nhunter22=", "password:\n<API_KEY>"),
    ("token=\nabc:defghijk123", "token=\n<API_KEY>"),
])
def test_a_value_on_the_next_line_that_looks_assigned_is_replaced(text: str, expected: str) -> None:
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize("text", ["DATABASE_PASSWORD=\nDEBUG=true", "secret:\nabc: def", "api_key:\nlevel: 3",
                                  "PASSWORD=\nDEBUG=1\n"])
def test_an_assignment_on_the_next_line_stays(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "keyed"), [
    ("the tests passed: all of them", False), ("a passage: compass, bypass", False),
    ("DB_PASS=hunter22xyz", True), ('{"pass": "x"}', True), ('{\\"pass\\": 1}', True), ("pass : 'x'", True),
    ("passphrase is set", True), ("PASS:abc", True),
])
def test_pass_counts_as_a_key_word_only_as_a_key(text: str, keyed: bool) -> None:
    assert detectors_assigned.has_key_word(text, text.lower()) is keyed


def test_placeholders_after_escaped_line_breaks_are_quoted() -> None:
    """What is before a placeholder (an escaped line break and indent) is read as before."""
    original = json.dumps({"a": json.dumps({"n": [1, 4111111111111111]}, indent=2)})
    text = original.replace("4111111111111111", "<CREDIT_CARD>")
    assert json.loads(json.loads(quote_bare_placeholders(text, original))["a"]) == {"n": [1, "<CREDIT_CARD>"]}
