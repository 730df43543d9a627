"""What shutdown counts of a batch under way, against a loopback receiver (real protobuf and JSON).

Shutdown counted a whole batch in flight as lost (``scores_dropped.shutdown``) while its export
thread went on sending it, score after score, on new connections: 300 scores counted dropped, 172
arrived. Closing a connection did not even cut the request under way (a read blocked on a socket
closed by another thread waits for the answer). Now the request under way is cut short, nothing more
is sent once closed, and what went before counts as exported.
"""

from __future__ import annotations

import threading
import time

import autotrace
from autotrace.export.otlp_http import HttpTarget
from autotrace.testing.otlp_receiver import OtlpReceiver
from tests.helpers import ended_span

TRACE = "0af7651916cd43dd8448eb211c80319c"


def _wait(condition, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return bool(condition())


def _counts(prefix: str) -> dict[str, int]:
    return {k: v for k, v in autotrace.stats().items() if k in (f"{prefix}_exported", f"{prefix}_dropped.shutdown")}


def _install(rx: OtlpReceiver, **settings: object) -> None:
    autotrace.install(local_store="off", integrations=(), langfuse_host=rx.endpoint, public_key="pk",
                      secret_key="sk", unknown_tenant="default", export_interval=0.05, **settings)


def test_scores_of_a_batch_under_way_at_shutdown_are_counted_as_what_happened_to_them() -> None:
    with OtlpReceiver() as rx:
        rx.delay(0.05)  # each score is a request of its own: the batch of 40 takes 2 s
        _install(rx)
        for _ in range(40):
            assert autotrace.score("helpful", 1.0, trace_id=TRACE) is not None
        assert _wait(lambda: len(rx.scores) >= 3)  # the batch is under way
        autotrace.shutdown(0.2)
        at_shutdown = _counts("scores")
        time.sleep(0.5)  # the old code went on sending the batch meanwhile
        arrived = len(rx.scores)
        assert _counts("scores") == at_shutdown  # all counted by shutdown, nothing after
        exported = at_shutdown.get("scores_exported", 0)
        assert exported >= 3 and exported + at_shutdown["scores_dropped.shutdown"] == 40
        # only the request cut short may have reached the endpoint unconfirmed (counted dropped)
        assert exported <= arrived <= exported + 1


def test_a_batch_sent_in_several_requests_stops_at_shutdown() -> None:
    with OtlpReceiver() as rx:
        rx.delay(0.1)
        _install(rx, max_export_bytes=1024, max_export_batch=100)  # a request of a few spans each
        for _ in range(100):
            ended_span()
        assert _wait(lambda: len(rx.requests) >= 2)
        autotrace.shutdown(0.2)
        at_shutdown = _counts("spans")
        requests = len(rx.requests)
        time.sleep(0.5)
        assert _counts("spans") == at_shutdown
        assert len(rx.requests) <= requests + 1  # the request cut short, at most: none sent after
        exported = at_shutdown.get("spans_exported", 0)
        assert exported >= 1 and exported + at_shutdown["spans_dropped.shutdown"] == 100
        assert exported <= len(rx.spans)


def test_closing_a_target_cuts_its_request_short_and_sends_nothing_more() -> None:
    with OtlpReceiver() as rx:
        rx.delay(3.0)
        target = HttpTarget(rx.endpoint + "/api/public/scores", timeout=10.0)
        outcome: list[object] = []
        sender = threading.Thread(target=lambda: outcome.append(target.send(b"{}", {})), daemon=True)
        sender.start()
        assert _wait(lambda: target._in_flight is not None and target._in_flight.sock is not None)
        time.sleep(0.1)  # the request is sent; the answer is 3 s away
        target.close()
        sender.join(timeout=2.0)
        assert not sender.is_alive()  # the old close left it waiting for the answer, then taken: ok
        assert outcome[0].ok is False  # type: ignore[attr-defined]
        rx.delay(0)  # a request sent now would be taken at once (the cut one's handler sleeps on)
        after = target.send(b"{}", {})
        assert (after.ok, after.retryable, after.reason) == (False, False, "closed")
        time.sleep(0.2)
        assert rx.scores == []
