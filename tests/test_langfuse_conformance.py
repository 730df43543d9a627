"""Conformance with the official Langfuse SDK: the same pipeline, sent by the SDK and by autotrace
to loopback receivers, must carry the same ``langfuse.*`` attributes, types and parent links."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.conformance import pipelines

#: SDK-internal markers that are not part of the data model Langfuse shows.
_SDK_INTERNAL = ("langfuse.internal.",)
_COMPARED_PREFIXES = ("langfuse.", "user.id", "session.id")


def _langfuse_view(spans: list[ReceivedSpan]) -> dict[str, Any]:
    by_id = {s.span_id: s for s in spans}
    view = {}
    for span in spans:
        attributes = {
            k: v for k, v in span.attributes.items()
            if k.startswith(_COMPARED_PREFIXES) and not k.startswith(_SDK_INTERNAL)
        }
        parent = by_id[span.parent_span_id].name if span.parent_span_id else None
        view[span.name] = {"parent": parent, "attributes": attributes}
    return view


def test_autotrace_sends_what_the_langfuse_sdk_sends(tmp_path) -> None:
    with OtlpReceiver() as sdk_rx, OtlpReceiver() as our_rx:
        result = subprocess.run([sys.executable, "-m", "tests.conformance.pipelines", sdk_rx.endpoint],
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
        sdk_spans = sdk_rx.wait_for_spans(4)

        autotrace.install(langfuse_host=our_rx.endpoint, public_key="pk-lf-conformance",
                          secret_key="sk-lf-conformance", unknown_tenant="default", integrations=(),
                          redact=False, export_interval=0.05)
        pipelines.run_autotrace()
        assert autotrace.flush(10)
        our_spans = our_rx.wait_for_spans(4)

    assert len(sdk_spans) == len(our_spans) == 4
    ours = _langfuse_view(our_spans)
    theirs = _langfuse_view(sdk_spans)
    assert ours.keys() == theirs.keys() == {"pipeline", "answer", "search", "lookup"}
    for name in theirs:
        assert ours[name]["parent"] == theirs[name]["parent"], name
        assert ours[name]["attributes"] == theirs[name]["attributes"], name
    assert len({s.trace_id for s in our_spans}) == 1

    sdk_headers, our_headers = sdk_rx.requests[0].headers, our_rx.requests[0].headers
    for header in ("authorization", "x-langfuse-ingestion-version", "x-langfuse-public-key", "content-type",
                   "content-encoding"):
        assert our_headers[header] == sdk_headers[header], header
