"""Detector review: Slack and Discord webhook URLs, service tokens by their prefixes (Slack app and
refresh tokens, GitLab, npm, Stripe/Svix webhook secrets, Groq, Replicate, xAI, Perplexity, PyPI),
``Authorization`` headers in schemes besides Bearer and Basic, SSNs written in spaces, zero-padded
IPv4 addresses, and AWS secret access keys next to their name (a command's argument, an XML element);
each with near misses that must stay (git SHAs, UUIDs, versions, prices, dates, prose, lists of
numbers), megabyte adversarial inputs, and the export path."""

from __future__ import annotations

import json
import re
from re import _constants as sre_constants
from re import _parser as sre_parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace

import autotrace
from autotrace.export import _digit_context, _secret_patterns
from autotrace.export.detectors import _PATTERNS, _contains_any, _plain_hint, redact_text
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GIT_SHA = "9fceb02d0ae598e95dc970b74767f19372d61af8"
UUID = "123e4567-e89b-12d3-a456-426614174000"


@pytest.mark.parametrize(("text", "expected"), [
    ("post to https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/abcdefghijklmnopqrstuvwx now",
     "post to https://hooks.slack.com/services/<API_KEY> now"),
    ("SLACK_WEBHOOK=https://hooks.slack.com/workflows/T0ABCDEF1/A0ABCDEF2/123456789012345678/abcdefghijklmnop",
     "SLACK_WEBHOOK=https://hooks.slack.com/workflows/<API_KEY>"),
    (json.dumps({"url": "https://hooks.slack.com/triggers/T0ABCDEF1/1234567890/abcdef0123456789"}),
     '{"url": "https://hooks.slack.com/triggers/<API_KEY>"}'),
    # slashes escaped as some JSON encoders write them
    ('{"url":"https:\\/\\/hooks.slack.com\\/services\\/T0ABCDEF1\\/B0ABCDEF2\\/abcdefghijklmnopqrstuvwx"}',
     '{"url":"https:\\/\\/hooks.slack.com\\/services\\/<API_KEY>"}'),
    ("https://discord.com/api/webhooks/123456789012345678/AbCdEf-GhIjKl_MnOpQr",
     "https://discord.com/api/webhooks/<API_KEY>"),
    ("https://discordapp.com/api/v10/webhooks/123456789012345678/AbCdEfGhIjKlMnOpQr",
     "https://discordapp.com/api/v10/webhooks/<API_KEY>"),
])
def test_the_secret_path_of_a_webhook_url_is_redacted_and_its_host_kept(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("token", [
    "xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx",  # (found before this review too)
    "xoxp-123456789012-123456789012-1234567890123-0123456789abcdef0123456789abcdef",
    "xoxe-1-My0xLTEyMzQ1Njc4OTAxMi0xMjM0NTY3ODkwMTIz",  # a rotation's refresh token
    "xapp-1-A0ABCDEF1-1234567890123-0123456789abcdef0123456789abcdef0123456789abcdef",  # an app-level token
    "glpat-AbCdEfGhIj1234567890", "glpat-AbCdEfGhIj1234567890_-xY.01.1a2b3c4d5",  # GitLab, routable too
    "gldt-AbCdEfGhIj1234567890", "glrt-AbCdEfGhIj1234567890", "glptt-0123456789abcdef0123456789abcdef01234567",
    "npm_abcdefghijklmnopqrstuvwxyz0123456789",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",  # Stripe, Svix
    "gsk_" + "aB3" * 17 + "x", "r8_" + "aB3" * 12 + "x", "xai-" + "aB3" * 26, "pplx-" + "aB3" * 16,
    "pypi-AgEIcHlwaS5vcmcCJGFiY2RlZjAxLTIzNDUtNjc4OS1hYmNkLWVmMDEyMzQ1Njc4OQACKlszLCJhYmMiXQ",
])
def test_service_tokens_are_redacted_by_their_prefixes(token: str) -> None:
    assert redact_text(f"token {token} here") == ("token <API_KEY> here", 1)
    assert redact_text(json.dumps({"t": token})) == ('{"t": "<API_KEY>"}', 1)
    assert redact_text(f"CI_VAR={token}") == ("CI_VAR=<API_KEY>", 1)
    assert redact_text(f"use {token}.") == ("use <API_KEY>.", 1)  # a sentence's full stop stays


@pytest.mark.parametrize("text", [
    "glpat-short", "see glpat- tokens in the docs", "npm_modules/.bin", "npm_config_cache=/tmp/npm",
    "npm_package_version=1.2.3", "npm_lifecycle_event=test", "whsec_ is the prefix", "a whsec_short one",
    "gsk_test", "r8_model", "the xai-sdk package", "pplx-api docs", "pip install pypi-simple", "pypi-AgEIcHlwaS5vcmc",
    "xapp-1-short", "https://hooks.slack.com/services/", "https://api.slack.com/messaging/webhooks",
    "https://discord.com/channels/123456789012345678/876543210987654321", "see /webhooks/ in the docs",
    f"commit {GIT_SHA}", f"id {UUID}", "version 1.2.3-rc.1", "price $1,299.99", "2024-05-17T10:00:00Z",
    "The webhook hooks into the Slack API; npm and GitLab tokens are secrets.",
])
def test_near_misses_of_the_new_prefixes_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "Authorization: Token <API_KEY>"),
    ("authorization: token ghx_0123456789abcdef", "authorization: token <API_KEY>"),
    ("Authorization: ApiKey abcdef0123456789abcdef", "Authorization: ApiKey <API_KEY>"),
    ("Authorization: SSWS 00QCjAl4MlV-WPXM-ABCDEFGHIJKLMNOPQRSTUVWX", "Authorization: SSWS <API_KEY>"),
    ("Authorization: Negotiate YIIGhgYJKoZIhvcSAQICAQBuggZ1MIIGcaADAgEFoQMCAQ6iBwMFACAAAAA=",
     "Authorization: Negotiate <API_KEY>"),
    ("Authorization: lin_api_0123456789abcdefABCDEF", "Authorization: <API_KEY>"),  # a key with no scheme
    ("AUTHORIZATION = 'Key 0123456789abcdef0123'", "AUTHORIZATION = 'Key <API_KEY>'"),
    (json.dumps({"headers": {"Authorization": "Token abcdef0123456789"}}),
     '{"headers": {"Authorization": "Token <API_KEY>"}}'),
    ("{'HTTP_AUTHORIZATION': 'Token abcdef0123456789', 'PATH_INFO': '/'}",
     "{'HTTP_AUTHORIZATION': 'Token <API_KEY>', 'PATH_INFO': '/'}"),
    ("Proxy-Authorization: Token abcdef0123456789", "Proxy-Authorization: Token <API_KEY>"),
    ("curl -H 'Authorization: Token abcdef0123456789' https://api.test", "curl -H 'Authorization: Token <API_KEY>' https://api.test"),
    # JSON inside a JSON string: its quotes escaped
    (json.dumps(json.dumps({"Authorization": "Token abcdef0123456789"})),
     json.dumps(json.dumps({"Authorization": "Token PLACEHOLDER"})).replace("PLACEHOLDER", "<API_KEY>")),
    ("Authorization: Token abcdef0123456789\nAccept: */*", "Authorization: Token <API_KEY>\nAccept: */*"),
    # Bearer and Basic stay their own kinds
    ("Authorization: Bearer abcdef0123456789", "Authorization: Bearer <BEARER_TOKEN>"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic <BASIC_AUTH>"),
])
def test_authorization_headers_in_any_scheme_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", [
    "Authorization: required", "authorization: none", "Authorization header missing",
    "authorization=denied for this user", "Authorization: Basic authentication is used here",
    "authorization: Token required for this endpoint", "Authorization: see the docs",
    # parameter lists: a signature of one request (the access key id is an API_KEY of its own)
    'Authorization: Digest username="jane", realm="api", nonce="dcd98b7102dd2f0e", response="6629fae49393a05397450978507c4ef1"',
    "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
    "The authorization: step 2 of 3", f"authorization: {UUID[:7]}",
])
def test_authorization_near_misses_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("SSN 123 45 6789", "SSN <US_SSN>"),
    ("ssn: 123 45 6789.", "ssn: <US_SSN>."),
    ("(123 45 6789)", "(<US_SSN>)"),
    ("123\u00a045\u00a06789", "<US_SSN>"),  # no-break spaces, as copied from a form
    (json.dumps({"ssn": "123 45 6789"}), '{"ssn": "<US_SSN>"}'),
    ("social security number 123 45 6789, thanks", "social security number <US_SSN>, thanks"),
    ("123-45-6789", "<US_SSN>"),  # hyphens, as before
])
def test_ssns_in_spaces_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", [
    "1 123 45 6789", "123 45 6789 1", "tokens [101 123 45 6789 102]", "12, 123 45 6789 5",  # lists of numbers
    "a123 45 6789", "123 45 6789a", "v1.123 45 6789", "123 45-6789",  # joined to more, or mixed separators
    "000 12 3456", "666 12 3456", "900 12 3456", "123 00 4567", "123 45 0000",  # never issued
    "Box 123, 123 45 Stockholm", "2024 05 17", "12 30 45", "070 123 45 67",  # post codes, dates, a phone
    "price 123 45 67.89", "1 234 567 890", "Chapter 123 45",
])
def test_ssn_near_misses_in_spaces_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), [
    ("ip 010.001.002.003", "ip <IP_ADDRESS>"),
    ("from 192.168.001.010 ok", "from <IP_ADDRESS> ok"),
    ("host 000.000.000.000", "host <IP_ADDRESS>"),
    ("\uff11\uff19\uff12\uff0e\uff11\uff16\uff18\uff0e\uff10\uff10\uff11\uff0e\uff10\uff11\uff10", "<IP_ADDRESS>"),
])
def test_zero_padded_ipv4_addresses_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", ["version 1.02.03.04", "01.02.03.04", "256.001.001.001", "999.001.002.003",
                                  "0.01.002.3", "release 2024.001.002.003", "v010.001.002"])
def test_ipv4_near_misses_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


STS_REPLY = ("<AssumeRoleResult><Credentials><AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>"
             f"<SecretAccessKey>{AWS_SECRET}</SecretAccessKey><SessionToken>FwoGZXIvYXdzEJr//////////wEaDM+abc=</SessionToken>"
             "<Expiration>2026-12-04T12:00:00Z</Expiration></Credentials></AssumeRoleResult>")


@pytest.mark.parametrize(("text", "expected"), [
    (f"aws configure set aws_secret_access_key {AWS_SECRET}", "aws configure set aws_secret_access_key <API_KEY>"),
    (f"AWS_SECRET_ACCESS_KEY  '{AWS_SECRET}'", "AWS_SECRET_ACCESS_KEY  '<API_KEY>'"),
    (STS_REPLY, "<AssumeRoleResult><Credentials><AccessKeyId><API_KEY></AccessKeyId>"
                "<SecretAccessKey><API_KEY></SecretAccessKey><SessionToken><API_KEY></SessionToken>"
                "<Expiration>2026-12-04T12:00:00Z</Expiration></Credentials></AssumeRoleResult>"),
    ("<password>hunter22!</password>", "<password><API_KEY></password>"),
    ("<ns:client_secret>s3cr3t-v4lue</ns:client_secret>", "<ns:client_secret><API_KEY></ns:client_secret>"),
    ("<apiKey>abcdef012345</apiKey>", "<apiKey><API_KEY></apiKey>"),
    # assignments, found before this review too
    (f"aws_secret_access_key={AWS_SECRET}", "aws_secret_access_key=<API_KEY>"),
    (json.dumps({"SecretAccessKey": AWS_SECRET}), '{"SecretAccessKey": "<API_KEY>"}'),
])
def test_aws_secret_access_keys_and_xml_elements_named_as_secrets_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text)[0] == expected


@pytest.mark.parametrize("text", [
    AWS_SECRET, f"blob {AWS_SECRET} end", f"commit {GIT_SHA}", f"sha1 {GIT_SHA} ok",  # never bare
    "aws_secret_access_key is required", "set aws_secret_access_key tooShort",
    "<max_tokens>1024</max_tokens>", "<input_tokens>123456</input_tokens>", "<token_count>123456</token_count>",
    "<secret>the treasure is buried here</secret>", "<password></password>", "<token>abc</token>",
    "<monkey>bananas123</monkey>", "<password>hunter22</passwd>",
])
def test_near_misses_of_named_secrets_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)


@pytest.mark.parametrize("text", [
    "The quick brown fox jumps over the lazy dog.", "Order #12345 shipped on 2024-05-17 for $1,299.99.",
    json.dumps({"id": UUID, "sha": GIT_SHA, "version": "3.11.7", "max_tokens": 256, "finish_reason": "stop"}),
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "see https://gitlab.com/group/project/-/merge_requests/1",
])
def test_ordinary_text_stays(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_the_new_secrets_are_api_keys_and_the_kinds_filter_applies() -> None:
    text = "glpat-AbCdEfGhIj1234567890 / Authorization: Token abcdef0123456789 / <password>hunter22</password>"
    expected = "<API_KEY> / Authorization: Token <API_KEY> / <password><API_KEY></password>"
    assert redact_text(text, frozenset({"API_KEY"})) == (expected, 3)
    assert redact_text(text, frozenset({"EMAIL"})) == (text, 0)
    assert redact_text("SSN 123 45 6789", frozenset({"PHONE"})) == ("SSN 123 45 6789", 0)


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet="glpatdrsoxi-_nmwhecku8/.s", max_size=30))
def test_the_service_hints_are_the_substring_tests_of_their_triggers(text: str) -> None:
    assert _secret_patterns.hint(text) is _contains_any(text, _secret_patterns.TRIGGERS)
    assert _plain_hint(text) is _contains_any(text, (*_secret_patterns.GITLAB_PREFIXES, *_secret_patterns.DASH_PREFIXES,
                                                     *_secret_patterns.WEBHOOK_HINTS, "_", "k-", "asic ", "xox"))


def _unbounded_repeats(parsed: object) -> list[str]:
    """The greedy or lazy repeats without an upper bound in a parsed expression (possessive ones left out)."""
    found: list[str] = []
    for op, av in parsed:
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT) and av[1] == sre_constants.MAXREPEAT:
            found.append(str(op))
        for part in av if isinstance(av, tuple | list) else (av,):
            for sub in part if isinstance(part, list) else (part,):
                if isinstance(sub, sre_parse.SubPattern):
                    found += _unbounded_repeats(sub)
    return found


@pytest.mark.parametrize("pattern", [
    _secret_patterns._TOKEN.pattern, _secret_patterns._WEBHOOK.pattern, _secret_patterns._AUTHORIZATION.pattern,
    _secret_patterns._ELEMENT.pattern, _secret_patterns._AWS_SECRET.pattern, _secret_patterns._UNDERSCORE_END.pattern,
    _secret_patterns._DASH_END.pattern, _PATTERNS["US_SSN"], _digit_context._NUMBER_BEFORE.pattern,
    _digit_context._NUMBER_AFTER.pattern,
], ids=["token", "webhook", "authorization", "element", "aws", "underscore", "dash", "ssn", "before", "after"])
def test_the_new_expressions_never_give_back_an_unbounded_repeat(pattern: str) -> None:
    """Linear by construction: a repeat that gave back what it read, tried from each start in a run,
    is what made a run of ``\\u0040`` take quadratic time. (The walk itself finds such a repeat.)"""
    assert _unbounded_repeats(sre_parse.parse(pattern)) == []
    assert _unbounded_repeats(sre_parse.parse(r"a(?:b[cd]+)?")) == ["MAX_REPEAT"]


MB = 1 << 20


@pytest.mark.parametrize(("unit", "expected"), [
    ("glpat-", lambda text: "<API_KEY>"),  # one run of the token's characters: one token
    ("npm_", lambda text: text), ("whsec_", lambda text: text), ("xapp-1-", lambda text: "<API_KEY>"),
    ("hooks.slack.com/services/", lambda text: text), ("hooks.slack.com/services/a/b.", lambda text: text.replace("a/b", "<API_KEY>")),
    ("https://discord.com/api/webhooks/1", lambda text: text),
    ("authorization: ", lambda text: text), ("Authorization: Token a=", lambda text: text),
    ("authorization:T a=", lambda text: text), ('{"authorization": "x', lambda text: text),
    ("<password>", lambda text: text), ("<password>abcdefgh", lambda text: text), ("<a", lambda text: text),
    ("aws_secret_access_key ", lambda text: text), ("123 45 ", lambda text: text), ("123 45 6789 ", lambda text: text),
    ("010.001.", lambda text: text),
])
def test_a_megabyte_of_each_new_forms_parts_is_redacted_as_expected(unit: str, expected: object) -> None:
    """A megabyte of repeats of each new form's parts (read once: seconds at most even under coverage;
    a quadratic expression would take hours)."""
    text = unit * (MB // len(unit))
    result, _ = redact_text(text)
    assert result == expected(text)


def test_the_new_forms_never_reach_the_exporter(rx: OtlpReceiver) -> None:
    install_one_tenant(rx)
    planted = {
        "webhook": "https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/abcdefghijklmnopqrstuvwx",
        "gitlab": "glpat-AbCdEfGhIj1234567890", "npm": "npm_abcdefghijklmnopqrstuvwxyz0123456789",
        "stripe": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "headers": json.dumps({"Authorization": "Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"}),
        "ssn": "SSN 123 45 6789", "ip": "010.001.002.003", "sts": STS_REPLY,
        "cli": f"aws configure set aws_secret_access_key {AWS_SECRET}",
    }
    with autotrace.tenant("t"), trace.get_tracer("third.party").start_as_current_span("call") as span:
        for key, value in planted.items():
            span.set_attribute(key, value)
    assert autotrace.flush(5)
    (received,) = rx.wait_for_spans(1)
    payload = b"".join(r.body for r in rx.requests)
    for fragment in ("abcdefghijklmnopqrstuvwx", "AbCdEfGhIj", "abcdefghijklmnopqrstuvwxyz0123456789", "MfKQ9r8G",
                     "9944b09199c62bcf", "123 45 6789", "010.001", "wJalrXUtnFEMI", "FwoGZXIvYXdz"):
        assert fragment.encode() not in payload, fragment
    assert received.attributes["webhook"] == "https://hooks.slack.com/services/<API_KEY>"
    assert json.loads(received.attributes["headers"]) == {"Authorization": "Token <API_KEY>"}
    assert received.attributes["ssn"] == "SSN <US_SSN>" and received.attributes["ip"] == "<IP_ADDRESS>"
    assert received.attributes["cli"] == "aws configure set aws_secret_access_key <API_KEY>"
    assert re.fullmatch(r"<AssumeRoleResult>.*</AssumeRoleResult>", received.attributes["sts"])
