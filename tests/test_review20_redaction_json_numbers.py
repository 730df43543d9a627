"""Review 20: a card written as a JSON number (``{"card": 4111111111111111}``, a tool's result or a
function's output) became a bare placeholder, ``{"card": <CREDIT_CARD>}``: no longer JSON, so Langfuse
showed the whole input or output as one string instead of a tree. A placeholder where JSON's parser
expects a value is now quoted when the text was JSON; a text that was no JSON is left as it was."""

from __future__ import annotations

import json

import pytest

import autotrace
from autotrace.export.detectors import redact_text
from autotrace.testing.otlp_receiver import OtlpReceiver


@pytest.mark.parametrize(("value", "expected"), [
    ({"card": 4111111111111111}, {"card": "<CREDIT_CARD>"}),
    ({"cards": [4111111111111111, 5555555555554444], "n": 2}, {"cards": ["<CREDIT_CARD>", "<CREDIT_CARD>"], "n": 2}),
    ({"note": "a,4111111111111111,b", "card": 4111111111111111},
     {"note": "a,<CREDIT_CARD>,b", "card": "<CREDIT_CARD>"}),  # one in a string stays as it is there
    ([{"to": "jane@example.com", "card": 378282246310005}], [{"to": "<EMAIL>", "card": "<CREDIT_CARD>"}]),
])
def test_a_number_replaced_in_json_text_leaves_json(value: object, expected: object) -> None:
    for text in (json.dumps(value), json.dumps(value, indent=2), json.dumps(value, separators=(",", ":"))):
        redacted, replaced = redact_text(text)
        assert json.loads(redacted) == expected
        assert replaced == json.dumps(expected).count("<")


@pytest.mark.parametrize("text", [
    "[jane@example.com, 4111111111111111]",  # no JSON: as it was
    '{"card": 4111111111111111, oops}',
])
def test_text_that_is_no_json_keeps_its_placeholders_bare(text: str) -> None:
    assert '"<' not in redact_text(text)[0]


def test_an_exported_output_holding_a_card_number_stays_json() -> None:
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-x", secret_key="sk-lf-xsecret",
                          unknown_tenant="default", integrations=(), export_interval=0.05)
        with autotrace.start_tool("charge", arguments={"amount": 12}) as tool:
            tool.set_output({"card": 4111111111111111, "status": "ok"})
        assert autotrace.flush(10)
        (span,) = rx.wait_for_spans(1)
    assert json.loads(span.attributes["langfuse.observation.output"]) == {"card": "<CREDIT_CARD>", "status": "ok"}
