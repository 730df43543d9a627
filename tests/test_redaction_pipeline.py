"""Redaction in the export path: every span (third-party ones included), its events, status and
scores are redacted before any byte leaves the process; a failing hook never leaks the raw value."""

from __future__ import annotations

import pytest
from opentelemetry import trace

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver

PLANTED = {
    "email": "jane.doe@example.com",
    "card": "4111 1111 1111 1111",
    "iban": "DE89 3704 0044 0532 0130 00",
    "ssn": "078-05-1120",
    "phone": "+1 415 555 0132",
    "ip": "203.0.113.77",
    "bearer": "Bearer abcDEF123456.ghiJKL",
    "openai_key": "sk-proj-AbCdEfGhIjKlMnOpQrStUv123456",
    "langfuse_key": "sk-lf-1234abcd-5678-efgh",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
}
SECRET_FRAGMENTS = [
    "jane.doe@example.com", "4111 1111 1111 1111", "DE89 3704", "078-05-1120", "415 555 0132", "203.0.113.77",
    "abcDEF123456", "sk-proj-AbCdEf", "sk-lf-1234abcd", "AKIAIOSFODNN7EXAMPLE", "eyJhbGciOiJIUzI1NiJ9",
]


def _leaky_pipeline() -> None:
    text = " ".join(f"{k}: {v}" for k, v in PLANTED.items())
    third_party = trace.get_tracer("some.http.lib")
    with autotrace.start_agent(f"agent for {PLANTED['email']}", input=text,
                               metadata={"contact": PLANTED["phone"], "nested": {"card": PLANTED["card"]}}) as agent:
        with autotrace.start_generation("llm", model="m", input=[{"role": "user", "content": text}]) as gen:
            gen.set_output({"role": "assistant", "content": f"Sure {PLANTED['email']}, your IBAN {PLANTED['iban']}"})
        with third_party.start_as_current_span("POST /users") as span:
            span.set_attribute("http.request.header.authorization", PLANTED["bearer"])
            span.set_attribute("client.address", PLANTED["ip"])
            span.add_event("log", {"message": f"key={PLANTED['openai_key']} aws={PLANTED['aws']}"})
        with pytest.raises(ValueError), autotrace.start_tool("lookup", arguments={"ssn": PLANTED["ssn"]}):
            raise ValueError(f"no record for {PLANTED['ssn']} / {PLANTED['jwt']}")
        agent.score("quality", 0.5, comment=f"reviewed by {PLANTED['email']} with {PLANTED['langfuse_key']}")
        agent.set_output("done")


def test_no_planted_secret_in_any_exported_byte() -> None:
    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-x", secret_key="sk-lf-xsecret",
                          unknown_tenant="default", integrations=(), export_interval=0.05)
        _leaky_pipeline()
        assert autotrace.flush(10)
        spans = rx.wait_for_spans(4)
        payload = b"".join(r.body for r in rx.requests)
    assert len(spans) == 4 and len(rx.scores) == 1
    for fragment in SECRET_FRAGMENTS:
        assert fragment.encode() not in payload, fragment
    by_name = {s.name: s for s in spans}
    assert by_name["agent for <EMAIL>"].attributes["langfuse.observation.metadata.contact"] == '"<PHONE>"'
    assert "<CREDIT_CARD>" in by_name["llm"].attributes["langfuse.observation.input"]
    http = by_name["POST /users"]
    assert http.attributes["http.request.header.authorization"] == "Bearer <BEARER_TOKEN>"
    assert http.attributes["client.address"] == "<IP_ADDRESS>"
    assert http.events[0]["attributes"]["message"] == "key=<API_KEY> aws=<API_KEY>"
    assert "<US_SSN>" in by_name["lookup"].status_message
    assert "<JWT>" in by_name["lookup"].status_message
    assert rx.scores[0][1]["comment"] == "reviewed by <EMAIL> with <API_KEY>"


def test_no_planted_secret_in_the_local_store(tmp_path) -> None:
    autotrace.install(local_store="on", local_store_path=tmp_path / "t.db", integrations=(), export_interval=0.05)
    _leaky_pipeline()
    assert autotrace.flush(10)
    raw = (tmp_path / "t.db").read_bytes() + (tmp_path / "t.db-wal").read_bytes()
    for fragment in SECRET_FRAGMENTS:
        assert fragment.encode() not in raw, fragment


def test_user_hook_sees_key_value_and_type_and_a_raising_hook_fails_closed() -> None:
    seen: list[tuple[str, str]] = []

    def mask_customer_ids(key: str, value: object, span_type: str) -> object:
        seen.append((key, span_type))
        if isinstance(value, str) and "CUST-" in value:
            return value.replace("CUST-991", "<CUSTOMER>")
        return value

    def broken(key: str, value: object, span_type: str) -> object:
        if key == "langfuse.observation.output":
            raise RuntimeError("hook bug")
        return value

    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-x", secret_key="sk-lf-x",
                          unknown_tenant="default", integrations=(), export_interval=0.05,
                          redact=[mask_customer_ids, broken])
        with autotrace.start_tool("t", arguments="customer CUST-991") as tool:
            tool.update(result="raw CUST-991 result")
        assert autotrace.flush(10)
        (span,) = rx.wait_for_spans(1)
    assert span.attributes["langfuse.observation.input"] == "customer <CUSTOMER>"
    assert span.attributes["langfuse.observation.output"] == "<REDACTION_FAILED>"
    assert ("langfuse.observation.input", "tool") in seen
    assert autotrace.stats()["redaction_hook_failures"] == 1


def test_a_hook_that_raised_for_a_while_redacts_again_once_fixed(caplog: pytest.LogCaptureFixture) -> None:
    failing = {"now": True}

    def mask_order_ids(key: str, value: object, span_type: str) -> object:
        if failing["now"]:
            raise RuntimeError("hook bug")
        return value.replace("ORD-7", "<ORDER>") if isinstance(value, str) else value

    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk-lf-x", secret_key="sk-lf-x",
                          unknown_tenant="default", integrations=(), export_interval=0.05, redact=[mask_order_ids])
        for turn in range(3):
            with autotrace.start_tool(f"lookup-{turn}", arguments="order ORD-7"):
                pass
        assert autotrace.flush(10)
        failing["now"] = False
        with autotrace.start_tool("lookup-after", arguments="order ORD-7"):
            pass
        assert autotrace.flush(10)
        spans = rx.wait_for_spans(4)
    failed = [s for s in spans if s.name == "<REDACTION_FAILED>"]  # the hook also sees span names
    assert len(failed) == 3  # fail closed while it raised: no value left unredacted
    assert {s.attributes["langfuse.observation.input"] for s in failed} == {"<REDACTION_FAILED>"}
    (after,) = [s for s in spans if s.name == "lookup-after"]
    assert after.attributes["langfuse.observation.input"] == "order <ORDER>"
    assert autotrace.stats()["redaction_hook_failures"] >= 3
    assert caplog.text.count("raised RuntimeError") == 1
