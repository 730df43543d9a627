"""Review 19 of the detectors on JSON held in JSON (a tool call's arguments, a tool's result in a chat
message list): a PEM private key's body escaped a level down (``\\\\n``) or with its slashes escaped
(``\\/``) was exported after its BEGIN line; an address in another script written by ``json.dumps``
(``ensure_ascii``) was missed when its top-level domain was escaped (``.\\u0440\\u0444``) and, a level
down, when any letter of its domain was (``m\\\\u00fcller@b\\\\u00fccher.de``); and an assignment
(``"password": ...``) was missed three levels down or more, its key's closing quote escaped by three
backslashes or more."""

from __future__ import annotations

import json

import openai
import pytest

import autotrace
from autotrace.export.detectors import redact_text
from autotrace.testing.fake_openai import FakeOpenAI
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import install_one_tenant

_BODY = ("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj", "MIIEogIBAAKCAQEAqj+/p0Q2Zx1vYh7w")
PEM = f"-----BEGIN PRIVATE KEY-----\n{_BODY[0]}\n{_BODY[1]}\n-----END PRIVATE KEY-----\n"
ADDRESSES = ("ivan@пример.рф", "用户@例子.广告", "müller@bücher.de")


def _tool_call_arguments(arguments: dict[str, str]) -> str:
    """Chat messages as an instrumentation records them: a tool call's arguments, a JSON string, in JSON."""
    return json.dumps([{"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": "deploy", "arguments": json.dumps(arguments)}}]}], ensure_ascii=False)


@pytest.mark.parametrize(("text", "expected"), [
    (json.dumps({"arguments": json.dumps({"key": PEM})}), '{"arguments": "{\\"key\\": \\"<PRIVATE_KEY>\\\\n\\"}"}'),
    (json.dumps({"a": json.dumps({"b": json.dumps({"key": PEM})})}),
     '{"a": "{\\"b\\": \\"{\\\\\\"key\\\\\\": \\\\\\"<PRIVATE_KEY>\\\\\\\\n\\\\\\"}\\"}"}'),
    (json.dumps({"k": PEM.replace("\n", "\r\n")}).replace("/", "\\/"), '{"k": "<PRIVATE_KEY>\\r\\n"}'),
    (json.dumps({"k": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI/B"}).replace("/", "\\/"), '{"k": "<PRIVATE_KEY>"}'),
])
def test_a_private_key_escaped_a_level_down_or_with_escaped_slashes_is_replaced_whole(text: str, expected: str) -> None:
    redacted, replaced = redact_text(text)
    assert (redacted, replaced) == (expected, 1)
    json.loads(redacted)


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("levels", [1, 2, 3])
def test_an_address_in_another_script_escaped_by_json_dumps_at_any_depth(address: str, levels: int) -> None:
    text = address
    for _ in range(levels):
        text = json.dumps({"to": text})
    expected = "<EMAIL>"
    for _ in range(levels):
        expected = json.dumps({"to": expected})
    assert redact_text(text) == (expected, 1)


@pytest.mark.parametrize(("value", "expected"), [
    ("mail jane@example.com\u2019s desk", "mail <EMAIL>\u2019s desk"),  # a curly apostrophe: punctuation
    ("jane@example.com\U0001f600 hi", "<EMAIL>\U0001f600 hi"),  # an emoji: surrogates
    ("jane@example.com\u3002\u8c22\u8c22", "<EMAIL>\u3002\u8c22\u8c22"),  # an ideographic full stop ending a sentence
    ("jane@example.com\u00a0next", "<EMAIL>\u00a0next"),  # a no-break space
])
def test_what_follows_an_address_escaped_by_json_dumps_is_no_letter_of_its_domain(value: str, expected: str) -> None:
    assert redact_text(json.dumps({"m": value})) == (json.dumps({"m": expected}), 1)


def test_nested_key_and_addresses_never_reach_the_local_store(tmp_path) -> None:
    path = tmp_path / "t.db"
    autotrace.install(local_store="on", local_store_path=path, integrations=(), export_interval=0.05)
    config = json.dumps({"password": "hunter22 horse"})  # three levels down in the recorded input
    tool_result = json.dumps({"owners": list(ADDRESSES), "config": config})  # ensure_ascii, as a tool returns it
    messages = [{"role": "tool", "tool_call_id": "call_1", "content": tool_result}]
    with autotrace.start_generation("llm", model="m", input=messages) as gen:
        gen.set_output(json.loads(_tool_call_arguments({"key": PEM, "owner": ADDRESSES[0]})))
    assert autotrace.flush(10)
    store = autotrace.local_store()
    assert store is not None
    (record,) = store.observations()
    content = json.loads(record["input"][0]["content"])
    assert content == {"owners": ["<EMAIL>"] * 3, "config": '{"password": "<API_KEY>"}'}
    arguments = json.loads(record["output"][0]["tool_calls"][0]["function"]["arguments"])
    assert arguments == {"key": "<PRIVATE_KEY>\n", "owner": "<EMAIL>"}
    raw = path.read_bytes() + (tmp_path / "t.db-wal").read_bytes()
    for fragment in (*_BODY, "u0440", "u0444", "b\\\\u00fccher", "bücher", "hunter22"):
        assert fragment.encode() not in raw, fragment


def test_a_chat_call_with_a_key_in_a_tool_call_exports_none_of_it(rx: OtlpReceiver, fake: FakeOpenAI) -> None:
    """Through the real OpenAI SDK and a loopback OTLP receiver."""
    install_one_tenant(rx, integrations=("openai",))
    messages = [
        {"role": "user", "content": "deploy it"},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "deploy", "arguments": json.dumps({"key": PEM, "notify": ADDRESSES[1]})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"notified": ADDRESSES[0]})},
        {"role": "user", "content": "thanks"},
    ]
    client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
    with autotrace.tenant("t"):
        reply = client.chat.completions.create(model="gpt-4o", messages=messages)
    assert reply.choices[0].message.content == "echo: thanks"
    assert autotrace.flush(5)
    (span,) = rx.wait_for_spans(1)
    recorded = json.loads(span.attributes["langfuse.observation.input"])
    assert json.loads(recorded[1]["tool_calls"][0]["function"]["arguments"]) == {
        "key": "<PRIVATE_KEY>\n", "notify": "<EMAIL>"}
    assert json.loads(recorded[2]["content"]) == {"notified": "<EMAIL>"}
    payload = b"".join(r.body for r in rx.requests)
    for fragment in (*_BODY, "u0440\\\\u0444", "u5e7f"):
        assert fragment.encode() not in payload, fragment


@pytest.mark.parametrize("levels", [3, 4, 5])
@pytest.mark.parametrize("key", ["password", "api_key", "token", "client_secret"])
def test_an_assignment_in_json_three_or_more_levels_down_is_replaced(key: str, levels: int) -> None:
    """``{\\\\\\"password\\\\\\": ...}``: the key's closing quote escaped by three backslashes or more."""
    text, expected = json.dumps({key: 'hunter22 "horse"'}), json.dumps({key: "<API_KEY>"})
    for _ in range(levels - 1):
        text, expected = json.dumps({"a": text}), json.dumps({"a": expected})
    assert redact_text(text) == (expected, 1)
