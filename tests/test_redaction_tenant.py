"""A redaction policy per customer: inside a hook, ``autotrace.redaction_tenant()`` names the tenant
whose span or score is being redacted (None for the resource and scope every tenant shares), so one
customer's content can be left out while another's is kept. Real OTLP to a loopback receiver."""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

import autotrace
from autotrace.export.credentials import Credentials
from autotrace.testing.otlp_receiver import OtlpReceiver

CONTENT = ("langfuse.observation.input", "langfuse.observation.output")
OMITTED = "<omitted: customer policy>"


def _key_of(span: Any) -> str:
    """The public key a span was exported with: which tenant's project it reached."""
    return base64.b64decode(span.headers["authorization"].split()[1]).decode().split(":")[0]


def test_a_hook_leaves_out_one_tenants_content_and_keeps_the_others() -> None:
    seen: Counter[tuple[str, str | None]] = Counter()

    def policy(key: str, value: Any, span_type: str) -> Any:
        tenant = autotrace.redaction_tenant()
        seen[(span_type, tenant)] += 1
        if tenant == "clinic" and (key in CONTENT or key == "score.comment"):
            return OMITTED
        return value

    with OtlpReceiver() as rx:
        autotrace.install(langfuse_host="http://127.0.0.1:9", integrations=(), export_interval=0.05,
                          credentials={name: Credentials(f"pk-{name}", f"sk-{name}", host=rx.endpoint)
                                       for name in ("acme", "clinic")}, redact=[policy])
        for name in ("acme", "clinic", "acme"):
            with autotrace.tenant(name), autotrace.start_generation("answer", model="m",
                                                                    input="my diagnosis is private") as gen:
                gen.set_output("take rest")
                autotrace.score("helpful", 1.0, comment="the patient liked it")
        assert autotrace.flush(10)
        spans = {(_key_of(span), span.attributes.get(CONTENT[0]), span.attributes.get(CONTENT[1]))
                 for span in rx.wait_for_spans(3)}
        scores = sorted((headers["authorization"], body.get("comment")) for headers, body in rx.scores)
    assert spans == {("pk-acme", "my diagnosis is private", "take rest"), ("pk-clinic", OMITTED, OMITTED)}
    assert [comment for _, comment in scores].count(OMITTED) == 1
    assert [comment for _, comment in scores].count("the patient liked it") == 2
    assert seen[("generation", "acme")] and seen[("generation", "clinic")] and seen[("score", "clinic")]
    assert seen[("resource", None)] and not [key for key in seen if key[0] == "resource" and key[1]]
    assert autotrace.redaction_tenant() is None  # outside a hook
