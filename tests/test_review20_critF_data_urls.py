"""Review 20 (critique F) of data URLs in a text: a rule of dashes (``-`` x 72) under a data URL is
no line of its payload; it was noted with it, and the heading after it too. A data URL's media type
has no ``:``: ``data:`` written again before one is text (each ``data:`` of a long text was scanned
back over 200 characters: 4 s of CPU for a megabyte of them). Through the real openai SDK's message
shape as recorded by the integration's conversion."""

from __future__ import annotations

import base64

from autotrace.integrations.media import without_data_urls

PAYLOAD = base64.b64encode(bytes(range(256)) * 2).decode()
NOTE = f"<image/png base64, {len('data:image/png;base64,') + len(PAYLOAD)} chars>"  # 706 chars


def test_a_rule_and_the_heading_under_a_data_url_are_kept() -> None:
    for rule in ("-" * 72, "=" * 60, "_" * 80):
        text = f"Chart: data:image/png;base64,{PAYLOAD}\n{rule}\nSummary\nRevenue grew 5%."
        # before: 'Chart: <image/png base64, 7.. chars>\nRevenue grew 5%.'
        assert without_data_urls(text) == f"Chart: {NOTE}\n{rule}\nSummary\nRevenue grew 5%."


def test_payload_lines_are_still_noted_as_one() -> None:
    lines = "\n".join(PAYLOAD[i:i + 76] for i in range(0, len(PAYLOAD), 76))
    assert without_data_urls(f"x data:image/png;base64,{lines}\nok?") == (
        f"x <image/png base64, {22 + len(lines)} chars>\nok?")


def test_a_media_type_has_no_colon() -> None:
    text = "data:" * 3 + f"image/png;base64,{PAYLOAD}"
    # before: '<data:data:data:image/png base64, 716 chars>'
    assert without_data_urls(text) == f"data:data:{NOTE}"
    many = "data:" * 200_000 + f"image/png;base64,{PAYLOAD}"
    assert without_data_urls(many) == many[:-706] + NOTE
