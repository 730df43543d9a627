"""A span ended by the garbage collector while the full span queue's intake holds its lock (a
generator abandoned in a reference cycle, left with its span open: collecting it closes the
generator, which ends the span) comes back into the intake on the same thread. Old code took a
plain lock there again and hung the application's thread for good. Real OpenTelemetry tracer and
real garbage collection, in a child interpreter (a hang must not hang the test run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import isolated_env

_PROGRAM = r'''
import gc, json, sys, threading
import autotrace
from autotrace.runtime import state
from opentelemetry import trace

QUEUE = 200
gate, holding = threading.Event(), threading.Event()

def hold(key, value, span_type):
    if value == "hold the pipeline":
        holding.set()
        gate.wait(60)
    return value

autotrace.install(local_store="on", local_store_path=sys.argv[1], integrations=(), queue_size=QUEUE,
                  export_interval=0.05, redact=[hold], backpressure=False)
with autotrace.start_span("holder", input="hold the pipeline"):
    pass
assert holding.wait(10)
tracer = trace.get_tracer("review19")
for i in range(QUEUE):  # the noisy tenant fills the queue; the pipeline thread is held
    with autotrace.tenant("noisy"), tracer.start_as_current_span("noisy"):
        pass

inside = []

def collecting(phase, info):  # whether a collection starts while the intake admits an item
    if phase == "start":
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_name != "_admit":
            frame = frame.f_back
        if frame is not None:
            inside.append(1)

gc.callbacks.append(collecting)

def abandoned():
    with autotrace.tenant("abandoned"), tracer.start_as_current_span("abandoned"):
        yield 1

quiet = 0
for k in range(1, 120):  # collections at each point of the quiet span's way into the queue
    with autotrace.tenant(f"quiet{k}"):
        span = tracer.start_span("quiet")
    generator = abandoned()
    next(generator)
    cycle = [generator]
    cycle.append(cycle)
    del generator, cycle
    gc.set_threshold(gc.get_count()[0] + k)
    span.end()
    gc.set_threshold(700, 10, 10)
    gc.collect()
    quiet += 1
    if inside:
        break
gc.callbacks.remove(collecting)
gate.set()
assert autotrace.flush(20)
store = autotrace.local_store()
names = [record["name"] for record in store.observations()]
stats = autotrace.stats()
print(json.dumps({"inside": bool(inside), "quiet": quiet,
                  "stored": {name: names.count(name) for name in set(names)},
                  "dropped": {k: v for k, v in stats.items() if k.startswith("spans_dropped")}}))
'''


def test_a_span_ended_by_the_garbage_collector_inside_the_full_queues_intake_does_not_hang(tmp_path: Path) -> None:
    try:
        done = subprocess.run([sys.executable, "-c", _PROGRAM, str(tmp_path / "traces.db")], env=isolated_env(tmp_path),
                              capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        raise AssertionError("the application's thread hung in the span queue's intake") from None
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["inside"] is True  # a collection did start inside the intake: the case under test
    quiet, stored, dropped = result["quiet"], result["stored"], result["dropped"]
    # every span either stored or counted once: the holder, 200 noisy, and each round's quiet and abandoned
    assert set(stored) <= {"holder", "noisy", "quiet", "abandoned"}
    assert stored["holder"] == 1
    assert sum(stored.values()) + dropped.get("spans_dropped.queue_full", 0) == 1 + 200 + 2 * quiet
    assert set(dropped) <= {"spans_dropped.queue_full"}
