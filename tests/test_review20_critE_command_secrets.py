"""Review 20 (critic E): cookies and credentials in the forms a trace holds them were exported as they
were: curl's ``--cookie`` (``--cookie=``), a HAR file's ``"name": "Cookie", "value": ...`` header (the
pairs of its value: only one named as a token was found), and curl's ``-u``/``--user user:password``.
A ``-u`` of another command (``docker run -u 1000:1000``, ``git push -u``) and a variable stay."""

from __future__ import annotations

import json

import pytest

from autotrace.export.detectors import redact_text

_SID = "8f3a9c2e1b7d4f60a5e2"


@pytest.mark.parametrize(("text", "expected", "count"), [
    (f"curl --cookie 'sessionid={_SID}' https://x.io", "curl --cookie 'sessionid=<API_KEY>' https://x.io", 1),
    (f"curl --cookie sessionid={_SID} https://x.io", "curl --cookie sessionid=<API_KEY> https://x.io", 1),
    (f"curl --cookie=sessionid={_SID} https://x.io", "curl --cookie=sessionid=<API_KEY> https://x.io", 1),
    ("curl -u admin:Hunter22x https://api.x.io", "curl -u admin:<API_KEY> https://api.x.io", 1),
    ("curl --user admin:Hunter22x https://api.x.io", "curl --user admin:<API_KEY> https://api.x.io", 1),
    ("curl --user=admin:Hunter22x https://api.x.io", "curl --user=admin:<API_KEY> https://api.x.io", 1),
    ("curl -s -u 'admin:S3cr3t!pass' https://x.io", "curl -s -u 'admin:<API_KEY>' https://x.io", 1),
    ("curl -uadmin:Hunter22x x.io", "curl -uadmin:<API_KEY> x.io", 1),
])
def test_curl_credentials_redacted(text: str, expected: str, count: int) -> None:
    assert redact_text(text) == (expected, count)


@pytest.mark.parametrize("text", [
    'curl -u "$USER:$TOKEN" https://x.io', "curl -u admin: https://x.io", "curl -u user:<password> https://x.io",
    "docker run -u 1000:1000 img", "curl -sSL https://get.x.sh | sudo -u app:grp sh", "git push -u origin main",
    "curl --cookie-jar jar.txt https://x.io", "use the --cookie option to send name=value pairs",
])
def test_other_commands_kept(text: str) -> None:
    assert redact_text(text) == (text, 0)


def test_har_cookie_header_values_redacted() -> None:
    har = {"log": {"entries": [{"request": {"method": "GET", "url": "https://x.io/", "headers": [
        {"name": "Accept", "value": "text/html"},
        {"name": "Cookie", "value": f"sessionid={_SID}; theme=dark; csrftoken=Zx81kQ0pLm3NvB7y"}]}}]}}
    for indent in (None, 2):
        text = json.dumps(har, indent=indent)
        out, count = redact_text(text)
        headers = json.loads(out)["log"]["entries"][0]["request"]["headers"]
        assert headers[1] == {"name": "Cookie", "value": "sessionid=<API_KEY>; theme=dark; csrftoken=<API_KEY>"}
        assert headers[0] == {"name": "Accept", "value": "text/html"}
        assert count == 2
