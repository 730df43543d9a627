"""``propagation.extract`` reads every header set as its full reading does where its fast path
(``_common``) answers: compared, result by result and counter by counter, over a generated corpus of
valid and malformed headers; and the fast paths of ``extract`` and ``inject`` give exact values."""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Iterator
from typing import Any

import grpc.aio
import pytest
from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from autotrace import propagation
from autotrace._internal import stats
from autotrace.context import hold_scope, release_scope


class _Records(logging.Handler):
    """The OpenTelemetry log records that reached a handler (not filtered out)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.name, str(record.msg)))


@pytest.fixture
def records() -> Iterator[_Records]:
    handler = _Records()
    otel = logging.getLogger("opentelemetry")
    otel.addHandler(handler)
    yield handler
    otel.removeHandler(handler)


def _outcome(run: Any, records: _Records) -> tuple[Any, ...]:
    """What ``run()`` returned (``_describe``d) or raised, the counters it moved and the records logged."""
    before, records.seen = stats(), []
    try:
        result: Any = ("ok", _describe(run()))
    except Exception as exc:
        result = ("raised", type(exc).__name__)
    after = stats()
    moved = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    return result, moved, records.seen


def _describe(result: Any) -> Any:
    """A context by its keys, remote span and baggage; a carrier by its items, in order."""
    if isinstance(result, Context):
        span = trace.get_current_span(result)
        sc = span.get_span_context()
        return (sorted(result), type(span).__name__, sc.trace_id, sc.span_id, int(sc.trace_flags), sc.is_remote,
                sc.is_valid, list(sc.trace_state.items()), list(baggage.get_all(result).items()))
    return list(result.items())


_HEX = "0123456789abcdef"


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_HEX) for _ in range(n))


def _traceparent(rng: random.Random) -> Any:
    trace_id, span_id = _hex(rng, 32), _hex(rng, 16)
    version = rng.choice(["00", "00", "00", "01", "ff", "cc", "0g", "FF"])
    flags = rng.choice(["01", "00", "03", "ff", "0G"])
    kind = rng.randrange(16)
    if kind == 0:
        trace_id = trace_id.upper()
    elif kind == 1:
        trace_id = "0" * 32
    elif kind == 2:
        span_id = "0" * 16
    elif kind == 3:
        trace_id = trace_id[:rng.choice([31, 33])] if rng.random() < .5 else trace_id + "a"
    elif kind == 4:
        span_id = span_id[:15]
    value = f"{version}-{trace_id}-{span_id}-{flags}"
    extra = rng.choice(["", "", "", "", "-", "-extra", " ", "\t", "\n", " x", ",", ",00-" + value[3:]])
    value = rng.choice(["", " ", "\t"]) + value + extra if kind == 5 else value + (extra if kind in (6, 7, 8) else "")
    if kind == 9:
        value = rng.choice(["", "00", "garbage", value * 10, value * 200])
    return value.encode() if kind == 10 else value


_TRACESTATES = ["", "congo=t61rcWkgMzE", "a=1,b=2", "a=1,a=2", "A=1", "a=1,,b=2", " a=1 , b=2 ", "a=x\ty",
                ",".join(f"k{i}=v" for i in range(40)), "k=" + "v" * 600, "k=" + "v" * 9000, "rojo=00f067aa0ba902b7",
                "vendor@tenant=x", "a=1;b"]
_BAGGAGES = ["", "autotrace.tenant=acme", "autotrace.tenant=acme,user=jane", "user=jane,autotrace.tenant=acme",
             "autotrace.tenant=a,autotrace.tenant=b", "autotrace.tenant=a,autotrace.tenant=a",
             "autotrace.tenant=acme;ttl=5", "autotrace%2Etenant=x", "autotrace.tenant+=x", "k=Jane%20Doe", "k=a+b",
             " k = v , j=w ", "=x", "k", ",,", "k=é", "k=a=b", "k=\"q\"", "k=a,b", "k=v,", "k=1,k=2",
             "xautotrace.tenant=acme", "autotrace.tenant=", "autotrace.tenant=t:1@x/y", "k=v;p=1;q",
             ",".join(f"k{i}=v" for i in range(120)), ",".join(f"k{i}=v" for i in range(200)),
             "k=" + "v" * 600, "k=" + "v" * 4095, "k=" + "v" * 5000, "k=" + "v" * 9000,
             "autotrace.tenant=acme,k=" + "v" * 8200, "k=%ZZ", "k=%E2%82%AC", "a.b-c_d=e.f:g@h/i-j"]
_NAMES = {"traceparent": ["traceparent"] * 6 + ["Traceparent", "TRACEPARENT"],
          "tracestate": ["tracestate"] * 4 + ["TraceState"],
          "baggage": ["baggage"] * 6 + ["Baggage", "BAGGAGE"]}


def _header(rng: random.Random) -> tuple[Any, Any]:
    kind = rng.choice(["traceparent"] * 5 + ["tracestate"] * 2 + ["baggage"] * 4 + ["other"] * 2)
    if kind == "other":
        return rng.choice([("user-agent", "grpc-python/1.70"), ("grpc-timeout", "5S"), ("x-id-bin", b"\x00\xff"),
                           (b"traceparent", "00-" + "1" * 32 + "-" + "2" * 16 + "-01"), (5, "x"), ("baggage", 5),
                           ("traceparent", None), ("content-type", "application/grpc"), ("Other", "x" * 9000)])
    value: Any = (_traceparent(rng) if kind == "traceparent"
                  else rng.choice(_TRACESTATES if kind == "tracestate" else _BAGGAGES))
    if kind != "traceparent" and rng.random() < .1:
        value = value.encode()
    return rng.choice(_NAMES[kind]), value


def _carrier(rng: random.Random) -> Any:
    pairs = [_header(rng) for _ in range(rng.choice([0, 1, 1, 1, 2, 2, 3, 4]))]
    shape = rng.randrange(10)
    if shape < 4:
        return pairs
    if shape < 6:
        return dict(pairs)
    if shape == 6:
        return tuple(pairs)
    if shape == 7:
        return grpc.aio.Metadata(*pairs)
    if shape == 8:
        return iter(pairs)
    return [*pairs, rng.choice([("a", "b", "c"), "ab", ("traceparent",)])]


def _corpus(seed: int, n: int) -> Iterator[Any]:
    rng = random.Random(seed)
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    yield from ([("traceparent", tp)], {"traceparent": tp, "baggage": "autotrace.tenant=acme"}, None, [], {},
                [("traceparent", tp), ("traceparent", tp)], {"traceparent": tp, "Traceparent": tp})
    for _ in range(n):
        yield _carrier(rng)


def _copied(carrier: Any) -> Any:
    """An equal carrier for the second reading (an iterator is read once)."""
    if isinstance(carrier, grpc.aio.Metadata):
        return grpc.aio.Metadata(*carrier)
    return iter(list(carrier)) if isinstance(carrier, Iterator) else carrier


def test_extract_reads_every_header_set_as_its_full_reading_does(records: _Records,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    differ = []
    cases = 0
    for carrier in _corpus(18, 6000):
        items = list(carrier) if isinstance(carrier, Iterator) else None
        new = _outcome(functools.partial(propagation.extract, iter(items) if items is not None else carrier), records)
        with monkeypatch.context() as full:  # the reading without its fast path
            full.setattr(propagation, "_common", lambda carrier: None)
            old = _outcome(functools.partial(propagation.extract, iter(items) if items is not None
                                             else _copied(carrier)), records)
        cases += 1
        if old != new:
            differ.append((carrier if items is None else items, old, new))
    assert cases == 6007
    assert differ == []


def _read_fast(carrier: Any) -> bool:
    try:
        return type(carrier) in (list, tuple, dict) and propagation._common(carrier) is not None
    except ValueError:  # a malformed item: ``extract`` counts it as ``_extract`` did
        return False


def test_extract_corpus_takes_the_fast_path_often() -> None:
    """The corpus exercises ``_common`` both ways, not only the full reading."""
    taken = sum(_read_fast(carrier) for carrier in _corpus(18, 6000))
    assert 300 < taken < 5000


_TP = "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"


@pytest.mark.parametrize(("carrier", "expected"), [
    ([("traceparent", f"00-{_TP}-03")], (0x0af7651916cd43dd8448eb211c80319c, 0xb7ad6b7169203331, 3, [], [])),
    ({"traceparent": f"01-{_TP}-01", "baggage": "autotrace.tenant=t:1@x/y,k=v", "tracestate": "a=1, b=2"},
     (0x0af7651916cd43dd8448eb211c80319c, 0xb7ad6b7169203331, 1, [("a", "1"), ("b", "2")],
      [("autotrace.tenant", "t:1@x/y"), ("k", "v")])),
    ((("grpc-timeout", "5S"), ("baggage", "k=1,k=2,autotrace.tenant=a,autotrace.tenant=a")),
     (0, 0, 0, [], [("k", "2"), ("autotrace.tenant", "a")])),
])
def test_common_requests_read_exactly(carrier: Any, expected: tuple[Any, ...]) -> None:
    """Read by ``_common``: the remote parent, its flags and state, the baggage in order."""
    assert propagation._common(carrier) is not None
    sc = trace.get_current_span(context := propagation.extract(carrier)).get_span_context()
    assert (sc.trace_id, sc.span_id, int(sc.trace_flags), list(sc.trace_state.items()),
            list(baggage.get_all(context).items())) == expected
    assert sc.is_remote or not sc.is_valid
    assert stats() == {}


@pytest.mark.parametrize("carrier", [
    {"traceparent": f"00-{_TP}-01", "tracestate": "a=x\ty", "baggage": "autotrace.tenant=acme;ttl=5"},
    {"traceparent": f"00-{_TP}-01", "tracestate": "a=x\ty", "baggage": "autotrace.tenant=a,autotrace.tenant=b"},
    [("traceparent", f"00-{_TP}-01"), ("tracestate", "a=x\ty"), ("Baggage", "k=v")],
])
def test_a_malformed_tracestate_is_counted_once_when_the_full_reading_follows(carrier: Any) -> None:
    """``_common`` gives up before it reads ``tracestate``, so the full reading counts it alone."""
    sc = trace.get_current_span(propagation.extract(carrier)).get_span_context()
    assert sc.is_valid and list(sc.trace_state.items()) == []
    assert stats().get("propagation_invalid_tracestate") == 1


def test_a_tenant_alone_is_written_as_its_member_and_after_other_entries() -> None:
    """``inject``'s fast path (the tenant alone, or nothing) and the full writing agree on the header."""
    parent = trace.set_span_in_context(NonRecordingSpan(SpanContext(
        0x0af7651916cd43dd8448eb211c80319c, 0xb7ad6b7169203331, False, TraceFlags(1))))
    held = hold_scope("t:1@x/y")
    try:
        alone: dict[str, str] = {}
        propagation.inject(alone, parent, True)
        with_other: dict[str, str] = {}
        propagation.inject(with_other, baggage.set_baggage("k", "v", parent), True)
    finally:
        release_scope(held)
    assert alone == {"traceparent": f"00-{_TP}-01", "baggage": "autotrace.tenant=t%3A1%40x%2Fy"}
    assert with_other == {"traceparent": f"00-{_TP}-01", "baggage": "k=v,autotrace.tenant=t%3A1%40x%2Fy"}
