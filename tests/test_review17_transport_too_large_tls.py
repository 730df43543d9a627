"""A 413 answered at the headers over HTTPS (how Langfuse Cloud and any production ingress is
reached): the proxy or ingress refuses the body's size and closes without reading it. Over TLS,
sending the rest of the body fails with ``SSLEOFError`` rather than a broken pipe, and that was
taken as a network failure: the batch was retried whole with backoff, never split or trimmed, and
dropped once the retries ran out. Real HTTPS to a loopback receiver."""

from __future__ import annotations

import ssl
from collections import Counter

import autotrace
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import CERTS, server_tls
from tests.test_export_too_large import _spans


def test_a_413_answered_at_the_headers_over_https_splits_the_batch() -> None:
    sizes = {f"step-{i}": 60_000 for i in range(140)}  # some 5 MB once compressed: more than the socket buffers
    # TLS 1.2: this receiver closes at once, without lingering as an ingress does, and under TLS 1.3 the
    # client then sometimes reads only the closed connection, the 413 lost (nothing could be split then)
    tls = server_tls()
    tls.maximum_version = ssl.TLSVersion.TLSv1_2
    with OtlpReceiver(tls=tls) as rx:
        rx.limit_body(400_000, at_headers=True)  # answers 413 at the headers and closes, the body unread
        autotrace.install(langfuse_host=rx.endpoint, public_key="pk", secret_key="sk", unknown_tenant="default",
                          integrations=(), export_interval=30.0, export_ca_file=str(CERTS / "ca.pem"),
                          max_retries=1, max_export_bytes=16 << 20)
        _spans(sizes)
        assert autotrace.flush(20)
        received = Counter(span.name for span in rx.spans)
        assert rx.refused_sizes
    assert received == Counter(list(sizes))
    stats = autotrace.stats()
    assert stats["spans_exported"] == 140 and stats["export_batches_split.langfuse:default"] >= 1
    assert "export_failures.langfuse:default" not in stats
    assert not [name for name in stats if name.startswith("spans_dropped")]
