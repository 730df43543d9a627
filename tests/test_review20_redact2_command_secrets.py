"""Review 20 (second pass): misses left by the last reviews. A Bearer token after an ideographic space,
a URL's ``%20`` or in capitals, an ``Authorization`` query parameter's credentials after ``%20`` or ``+``,
a command's password after ``--password`` and a space or glued to MySQL's ``-p``, and a SendGrid API
key were exported as they were."""

from __future__ import annotations

import pytest

from autotrace.export.detectors import redact_text

_TOKEN = "abcdefghij1234567890xyz"
_SENDGRID = "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"


@pytest.mark.parametrize(("text", "expected"), [
    (f"Authorization: Bearer\u3000{_TOKEN}", "Authorization: Bearer\u3000<BEARER_TOKEN>"),
    (f"BEARER {_TOKEN}", "BEARER <BEARER_TOKEN>"),
    (f"https://x.io/cb?authorization=Bearer%20{_TOKEN}&x=1", "https://x.io/cb?authorization=Bearer%20<BEARER_TOKEN>&x=1"),
    (f"GET /?Authorization=Bearer+{_TOKEN}", "GET /?Authorization=Bearer+<API_KEY>"),
    ("mysql --password s3cr3tPass! -h db", "mysql --password <API_KEY> -h db"),
    ('mysql --password "s3cr3tPass!" -h db', 'mysql --password "<API_KEY>" -h db'),
    ("MYSQL --PASSWORD S3CR3T -h db", "MYSQL --PASSWORD <API_KEY> -h db"),
    ("curl -u jane --pass correcthorsebatterystaple", "curl -u jane --pass <API_KEY>"),
    ("mysql -uroot -ps3cr3tPass! shop", "mysql -uroot -p<API_KEY> shop"),
    ("mysqldump -u root -pHunter22 shop > x.sql", "mysqldump -u root -p<API_KEY> shop > x.sql"),
    ("MariaDB -u root -pabc123 -h db", "MariaDB -u root -p<API_KEY> -h db"),
    (f"SENDGRID_KEY {_SENDGRID}", "SENDGRID_KEY <API_KEY>"),
    (f'{{"key": "{_SENDGRID}"}}', '{"key": "<API_KEY>"}'),
])
def test_the_secret_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", [
    "THE BEARER INSTRUMENT IS VALID", "BEARER BONDS ARE PAYABLE TO WHOEVER HOLDS THEM", "the bearer instrument",
    "Use the --password flag to set it", "run with --password option", "pass --password $DB_PASSWORD here",
    "--password <your-password>", "--password-file /etc/pw1", "x--password s3cr3tPass!",
    "mysql -u root -p shop", "mysql -h db -P 3306 -p", "mysql -e 'select 1'; tar -pxf y.tar",
    "mkdir -p /tmp/x && mysql -e x", "ssh -p 2222 host", "SG.com is a domain", "see SG.x.y",
])
def test_prose_and_code_stay(text: str) -> None:
    assert redact_text(text) == (text, 0)
