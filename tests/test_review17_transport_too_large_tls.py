"""A 413 answered at the headers over HTTPS (how Langfuse Cloud and any production ingress is
reached): the proxy or ingress refuses the body's size and closes without reading it. Over TLS,
sending the rest of the body fails with ``SSLEOFError`` rather than a broken pipe, and that was
taken as a network failure: the batch was retried whole with backoff, never split or trimmed, and
dropped once the retries ran out. Real HTTPS to a loopback receiver."""

from __future__ import annotations

import ssl

from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import CERTS, server_tls
from tests.test_export_review3 import split_when_refused_at_the_headers


def test_a_413_answered_at_the_headers_over_https_splits_the_batch() -> None:
    # TLS 1.2: this receiver closes at once, without lingering as an ingress does, and under TLS 1.3 the
    # client then sometimes reads only the closed connection, the 413 lost (nothing could be split then)
    tls = server_tls()
    tls.maximum_version = ssl.TLSVersion.TLSv1_2
    with OtlpReceiver(tls=tls) as rx:
        split_when_refused_at_the_headers(rx, export_ca_file=str(CERTS / "ca.pem"))
