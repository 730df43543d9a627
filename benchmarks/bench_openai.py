"""Per-call overhead of OpenAI instrumentation: sync chat, a 20-chunk stream, async chat, and the
same stream when the caller itself asks for usage (``stream_options.include_usage``), so every
contender gets the same response (autotrace asks for usage by default; the others do not).

Every contender runs in its own interpreter against the same in-process httpx2 mock transport
(no network), content capture on. autotrace runs its full pipeline (serialisation, redaction,
routing) with no destination, so only the export I/O is left out; the others run their SDK span
pipeline with a batch processor and a no-op exporter.

    python benchmarks/bench_openai.py            # ~25 minutes: 5 interpreters per contender
    python benchmarks/bench_openai.py --quick    # ~2 minutes, one interpreter each: a smoke test
    python benchmarks/bench_openai.py --paired   # ~3 minutes (--repeat 3: ~7): added time within each interpreter
    python benchmarks/bench_openai.py --paired --together   # ~1 minute (--rounds 300 --repeat 3: ~10): autotrace
                                                            # and the OpenTelemetry-based ones side by side
    python benchmarks/bench_openai.py --paired --together --block 1000 --rounds 8 --repeat 3   # ~8 minutes:
        # blocks long enough that each library's export thread and garbage land in its own blocks
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness
import _paired

CONTENDERS = ["bare", "autotrace", "autotrace-no-stream-usage", "openinference", "openllmetry",
              "otel-contrib-openai-v2", "langfuse"]
COLUMNS = ["sync", "stream20", "async", "stream20u"]
#: Contenders that can share one interpreter (``--paired --together``; one autotrace variant at a
#: time): each patches the SDK's classes, and the OpenTelemetry-based ones take a tracer provider
#: of their own.
SHAREABLE = ["autotrace", "autotrace-no-stream-usage", "otel-contrib-openai-v2", "openinference", "openllmetry"]
MESSAGES = [{"role": "system", "content": "You are a support agent."},
            {"role": "user", "content": "Where is my order 7? It was due yesterday."}]


def _completion() -> bytes:
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Your order ships today."}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 6, "total_tokens": 36},
    }).encode()


def _stream(include_usage: bool) -> bytes:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    lines = []
    for i in range(20):
        lines.append({**base, "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]})
    lines.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if include_usage:
        lines.append({**base, "choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 20,
                                                        "total_tokens": 50}})
    return "".join(f"data: {json.dumps(line)}\n\n" for line in lines).encode() + b"data: [DONE]\n\n"


def _clients() -> tuple[Any, Any]:
    import httpx2
    import openai

    completion, with_usage, without_usage = _completion(), _stream(True), _stream(False)

    def handler(request: Any) -> Any:
        body = json.loads(request.content)
        if body.get("stream"):
            data = with_usage if (body.get("stream_options") or {}).get("include_usage") else without_usage
            return httpx2.Response(200, content=data, headers={"content-type": "text/event-stream"})
        return httpx2.Response(200, content=completion, headers={"content-type": "application/json"})

    sync = openai.OpenAI(api_key="sk-bench", base_url="http://bench.local/v1", max_retries=0,
                         http_client=httpx2.Client(transport=httpx2.MockTransport(handler)))
    asyncc = openai.AsyncOpenAI(api_key="sk-bench", base_url="http://bench.local/v1", max_retries=0,
                                http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)))
    return sync, asyncc


def setup(contender: str, shared: bool = False) -> None:
    """Instrument the SDK for ``contender``; ``shared``: other contenders share this interpreter,
    so an OpenTelemetry-based one gets a tracer provider of its own instead of the global one."""
    import os

    if contender == "bare":
        return
    if contender.startswith("autotrace"):
        import autotrace

        # the second variant does not ask streams for usage: the SDK then parses one chunk less
        autotrace.install(local_store="off", integrations=("openai",), stream_usage=contender == "autotrace")
    elif contender == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=_harness.otel_provider(private=shared))
    elif contender == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=_harness.otel_provider(private=shared))
    elif contender == "otel-contrib-openai-v2":
        # content on the span, in the latest GenAI conventions (what this version reads)
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "gen_ai_latest_experimental"
        os.environ["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "SPAN_ONLY"
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=_harness.otel_provider(private=shared))
    elif contender == "langfuse":
        from langfuse import Langfuse

        Langfuse(public_key="pk-lf-bench", secret_key="sk-lf-bench", base_url="http://127.0.0.1:9",
                 span_exporter=_harness.noop_exporter())
    else:
        raise SystemExit(f"unknown contender {contender}")


def calls(contender: str) -> dict[str, Callable[[], Any]]:
    """The call each column times, on clients made for ``contender`` (Langfuse's drop-in has its own)."""
    sync, asyncc = _clients()
    if contender == "langfuse":
        from langfuse.openai import openai as lf_openai  # the drop-in replacement module

        sync = lf_openai.OpenAI(api_key="sk-bench", base_url="http://bench.local/v1", max_retries=0,
                                http_client=sync._client)
        asyncc = lf_openai.AsyncOpenAI(api_key="sk-bench", base_url="http://bench.local/v1", max_retries=0,
                                       http_client=asyncc._client)

    def chat() -> Any:
        return sync.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2)

    def stream() -> Any:
        return [chunk for chunk in sync.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)]

    def stream_with_usage() -> Any:
        return [chunk for chunk in sync.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                                stream_options={"include_usage": True})]

    async def achat() -> Any:
        return await asyncc.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0.2)

    return {"sync": chat, "stream20": stream, "async": achat, "stream20u": stream_with_usage}


def measure(contender: str, iterations: int) -> dict[str, float]:
    setup(contender)
    call = calls(contender)
    result = {
        "sync": _harness.time_sync(call["sync"], iterations),
        "stream20": _harness.time_sync(call["stream20"], max(1, iterations // 2)),
        "async": _harness.time_async(call["async"], iterations),
        "stream20u": _harness.time_sync(call["stream20u"], max(1, iterations // 2)),
        "calls": 4 * 50 + 5 * (2 * iterations + 2 * max(1, iterations // 2)),
    }
    if contender != "bare":
        result["exported_in_loop"] = _exported(contender)
        flush(contender)
        result["exported"] = _exported(contender)
    return result


def measure_paired(contender: str, rounds: int, block: int | None = None) -> dict[str, Any]:
    """Each column's added time with the contender's patches switched off and on (``_paired``)."""
    found = _instrument(contender, shared=False)
    call = calls(contender)
    result: dict[str, Any] = {"patched": _names(found)}
    for column in COLUMNS:
        result[column] = _paired.added(found, call[column], rounds, calls=block or _block_calls(column))
    return result


def measure_together(contenders: list[str], rounds: int, block: int | None = None) -> dict[str, Any]:
    """Each column's added time of several contenders instrumented in this one interpreter, each
    timed with only its own patches in place (``_paired.compare``), once ``_check_alone`` has
    shown that each records its calls alone."""
    unknown = [name for name in contenders if name not in SHAREABLE]
    if unknown:
        raise SystemExit(f"cannot share an interpreter: {', '.join(unknown)} (these can: {', '.join(SHAREABLE)})")
    if sum(name.startswith("autotrace") for name in contenders) > 1:
        raise SystemExit("one autotrace variant at a time: they patch the same methods with one installation")
    found: dict[str, list[_paired.Patch]] = {}
    for name in contenders:  # each finds its patch points with the others' switched off
        found[name] = _instrument(name, shared=True)
        _paired.switch(found[name], False)
    call = calls("bare")  # plain clients: every contender here patches the SDK's classes
    _check_alone(found, call)
    result: dict[str, Any] = {name: {"patched": _names(patches)} for name, patches in found.items()}
    for column in COLUMNS:
        for name, cell in _paired.compare(found, call[column], rounds, calls=block or _block_calls(column)).items():
            result[name][column] = cell
    return result


def _check_alone(found: dict[str, list[_paired.Patch]], call: dict[str, Callable[[], Any]]) -> None:
    """Before timing: with each contender's patches alone in place, one call of every column gives
    one span per call to that contender and none to the others; with none in place, no span."""

    def spans() -> tuple[int, int]:
        flush("autotrace")
        return _exported("autotrace"), _harness.flush_otel()

    for state in (None, *found):
        _paired.switch_only(found, state)
        before = spans()
        _call_each(call)
        after = spans()
        recorded = (after[0] - before[0], after[1] - before[1])
        own = len(call)
        expected = (0, 0) if state is None else (own, 0) if state.startswith("autotrace") else (0, own)
        if recorded != expected:
            raise SystemExit(f"{state or 'bare'}: spans (autotrace, OpenTelemetry) {recorded}, expected {expected}")
    _paired.switch_only(found, None)


def _instrument(contender: str, shared: bool) -> list[_paired.Patch]:
    """Set ``contender`` up and return what it patched in ``openai``."""
    _call_each(calls("bare"))  # loads every module the calls use, before the snapshot
    before = _paired.snapshot("openai")
    setup(contender, shared)
    found = _paired.patches(before, "openai")
    if not found:
        raise SystemExit(f"{contender}: no patched attribute found in openai")
    return found


def _call_each(call: dict[str, Callable[[], Any]]) -> None:
    """Make each column's call once (the async one on a loop of its own)."""
    import asyncio

    for column, fn in call.items():
        if column == "async":
            asyncio.run(fn())
        else:
            fn()


def _names(found: list[_paired.Patch]) -> list[str]:
    return sorted(f"{getattr(owner, '__name__', owner)}.{name}" for owner, name, _, _ in found)


def _block_calls(column: str) -> int:
    return 10 if column.startswith("stream") else 20


def _exported(contender: str) -> int:
    if contender.startswith("autotrace"):  # spans that went through its whole pipeline (no destination here)
        import autotrace

        return autotrace.stats().get("spans_dropped.no_destination", 0)
    return _harness.EXPORTED[0]


def flush(contender: str) -> None:
    """Hand everything the contender still holds to its exporter."""
    if contender.startswith("autotrace"):
        import autotrace

        autotrace.flush(60)
    elif contender == "langfuse":
        from langfuse import get_client

        get_client().flush()
    else:
        _harness.flush_otel()


def _ratios(rows: list[tuple[str, dict[str, Any] | None]], runs: _harness.Runs) -> list[str]:
    """autotrace's added time over the fastest other library's, per column (the issue's target: 0.5):
    from the medians, and its range over the rounds (one interpreter per contender, taken in turns)."""
    results = {name: result for name, result in rows if result and "skipped" not in result}
    bare = results.get("bare")
    if bare is None:
        return []
    others = [name for name in results if name != "bare" and not name.startswith("autotrace")]
    lines = ["added time of autotrace over the fastest other library's (target: at most 0.5): from the medians, "
             "then the same ratio within each round (median, lowest-highest)"]
    for ours in (name for name in results if name.startswith("autotrace")):
        cells = []
        for column in COLUMNS:
            added = {name: results[name][column] - bare[column] for name in [ours, *others]}
            fastest = min(others, key=lambda name: added[name], default=None)
            if fastest is not None and added[fastest] > 0:
                per_round = _round_ratios(runs, ours, others, column)
                spread = (f" (rounds {statistics.median(per_round):.2f}, {min(per_round):.2f}-{max(per_round):.2f})"
                          if len(per_round) > 1 else "")
                cells.append(f"{column} {added[ours] / added[fastest]:.2f}{spread} (vs {fastest})")
        lines.append(f"  {ours:<26}" + ", ".join(cells))
    return lines


def _round_ratios(runs: _harness.Runs, ours: str, others: list[str], column: str) -> list[float]:
    """The ratio within each round, against that round's bare interpreter and fastest other library."""
    ratios = []
    for index, base in enumerate(runs.get("bare", [])):
        try:
            added_others = [runs[name][index][column] - base[column] for name in others]  # type: ignore[index]
            fastest = min(added_others)
            if fastest > 0:
                ratios.append((runs[ours][index][column] - base[column]) / fastest)  # type: ignore[index]
        except (TypeError, KeyError, IndexError):  # a contender skipped in that round
            continue
    return ratios


def _spans_footer(rows: list[tuple[str, dict[str, Any] | None]], runs: _harness.Runs) -> str:
    """The target ratios, and how much of each contender's export work happened inside the timed loops."""
    lines = [*_ratios(rows, runs), "spans per contender: exported while the loops ran / after a final flush / calls made"]
    for name, result in rows:
        if result and "exported" in result:
            calls = result["calls"]
            lines.append(f"  {name:<26}{result['exported_in_loop']:>8.0f} / {result['exported']:>8.0f} / {calls:>8.0f}"
                         f"   ({result['exported_in_loop'] / calls:.0%} in the loop, "
                         f"{1 - result['exported'] / calls:.0%} never exported)")
    return "\n".join(lines)


def main() -> None:
    _harness.compare_main(__file__, __doc__, CONTENDERS, COLUMNS, "OpenAI per-call time", measure, quick=300, full=1500,
                          footer=_spans_footer, paired=measure_paired,
                          together=(measure_together, [name for name in SHAREABLE if name != "autotrace-no-stream-usage"]))

if __name__ == "__main__":
    main()
