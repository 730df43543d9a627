"""A JWT whose claims are sent with an empty or short signature (review 16)."""

from __future__ import annotations

import base64
import json

import pytest

from autotrace.export.detectors import redact_text


def _part(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


_HEADER, _CLAIMS = _part({"alg": "none"}), _part({"email": "jane@example.com", "sub": "42"})


@pytest.mark.parametrize(("text", "expected"), [
    (f"jwt {_HEADER}.{_CLAIMS}.", "jwt <JWT>"),  # an unsecured token (alg none)
    (json.dumps({"t": f"{_HEADER}.{_CLAIMS}."}), '{"t": "<JWT>"}'),
    (f"Cookie: id={_HEADER}.{_CLAIMS}.abc; Path=/", "Cookie: id=<JWT>; Path=/"),  # a signature cut short
])
def test_a_jwt_with_no_or_a_short_signature_is_redacted(text: str, expected: str) -> None:
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize("text", ["file eyJhbGciOi.json", "a.eyJ.b", "see eyJhbGciOi.eyJ"])
def test_text_that_merely_starts_like_a_jwt_stays(text: str) -> None:
    assert redact_text(text) == (text, 0)
