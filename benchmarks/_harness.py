"""Shared benchmark plumbing: timing loops, one subprocess per contender (so patches never stack),
and the result tables. Timings are medians of several rounds, in microseconds per call."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any


def time_sync(fn: Callable[[], Any], iterations: int, rounds: int = 5, warmup: int = 50) -> float:
    """Median µs per call of ``fn`` over ``rounds`` rounds of ``iterations`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        samples.append((time.perf_counter() - start) / iterations * 1e6)
    return statistics.median(samples)


def time_async(fn: Callable[[], Awaitable[Any]], iterations: int, rounds: int = 5, warmup: int = 50) -> float:
    """The same for a coroutine function, on one event loop."""
    import asyncio

    async def run() -> float:
        for _ in range(warmup):
            await fn()
        samples = []
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(iterations):
                await fn()
            samples.append((time.perf_counter() - start) / iterations * 1e6)
        return statistics.median(samples)

    return asyncio.run(run())


#: Every interpreter's result per contender, in the order the rounds ran (None: it failed).
Runs = dict[str, list[dict[str, Any] | None]]
#: Spans the no-op exporter of an OpenTelemetry-based contender has received so far.
EXPORTED = [0]
_providers: list[Any] = []
#: The providers made for contenders that share the interpreter.
_private_providers: list[Any] = []


def noop_exporter() -> Any:
    """A span exporter that only counts what it receives (in ``EXPORTED``)."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Noop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            EXPORTED[0] += len(spans)
            return SpanExportResult.SUCCESS

    return Noop()


def otel_provider(private: bool = False) -> Any:
    """This process's global SDK provider for the OpenTelemetry-based contenders: a batch processor
    and a no-op exporter, so they pay their span pipeline but no export I/O. ``private``: a new
    provider of the same kind, not made global (for a contender sharing the interpreter)."""
    if private or not _providers:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(noop_exporter()))
        if private:
            _private_providers.append(provider)
            return provider
        trace.set_tracer_provider(provider)
        _providers.append(provider)
    return _providers[0]


def flush_otel() -> int:
    """Flush every OpenTelemetry provider made here; the spans their exporters have received so far."""
    for provider in (*_providers, *_private_providers):
        provider.force_flush()
    return EXPORTED[0]


def run_contender(script: str, contender: str, *args: str, timeout: float = 600) -> dict[str, Any] | None:
    """Run ``script --contender NAME`` in a fresh interpreter; its last stdout line is a JSON result."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRACE_", "LANGFUSE_", "OTEL_"))}
    result = subprocess.run([sys.executable, script, "--contender", contender, *args], capture_output=True,
                            text=True, timeout=timeout, env=env, check=False)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["failed"])[-1]
        return {"skipped": reason[:120]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def compare_main(script: str, doc: str | None, contenders: Sequence[str], columns: Sequence[str], title: str,
                 measure: Callable[[str, int], dict[str, Any]], quick: int, full: int,
                 footer: Callable[[list[tuple[str, dict[str, Any] | None]], Runs], str] | None = None,
                 paired: Callable[[str, int, int | None], dict[str, Any]] | None = None,
                 together: tuple[Callable[[list[str], int, int | None], dict[str, Any]], Sequence[str]] | None = None,
                 ) -> None:
    """The command line every contender benchmark shares: the parent runs each contender in a
    fresh interpreter (``--contender NAME``) and prints the table. With ``--paired`` (where the
    benchmark supports it) each interpreter measures its contender's added time itself, patches
    switched off and on between blocks (``_paired``); with ``--together`` as well, the contenders
    that can (``together``: the measurement and their names) share each interpreter, and every
    round times each of them and the bare call side by side."""
    import argparse

    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--contender")
    parser.add_argument("--contenders", help="comma-separated subset of " + ",".join(contenders))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--repeat", type=int, help="fresh interpreters per contender, taken in turns (default 5, "
                        "1 with --quick or --paired); the table shows the median")
    if paired is not None:
        parser.add_argument("--paired", action="store_true", help="added time within each interpreter, patches "
                            "switched off and on between blocks of calls")
        parser.add_argument("--rounds", type=int, default=100, help="paired rounds per column (default 100)")
        parser.add_argument("--block", type=int, help="calls per paired block (default: the benchmark's own, "
                            "short); longer blocks keep more of each contender's background work (its export "
                            "thread, the garbage it leaves) inside its own blocks")
    if together is not None:
        parser.add_argument("--together", action="store_true", help="with --paired: the contenders share each "
                            "interpreter (default: " + ",".join(together[1]) + ")")
    args = parser.parse_args()
    iterations = args.iterations or (quick if args.quick else full)
    is_paired = paired is not None and args.paired
    is_together = together is not None and is_paired and args.together
    if args.contender:
        if is_together:
            emit(together[0](args.contender.split(","), args.rounds, args.block))  # type: ignore[index]
        elif is_paired:
            emit(paired(args.contender, args.rounds, args.block))  # type: ignore[misc]
        else:
            emit(measure(args.contender, iterations))
        return
    repeat = args.repeat or (1 if args.quick or is_paired else 5)
    if args.contenders:
        chosen = args.contenders.split(",")
        unknown = set(chosen) - set(contenders)
        if unknown:
            parser.error(f"unknown contender(s) {sorted(unknown)}")
        contenders = [name for name in contenders if name in chosen]
    elif is_together:
        contenders = list(together[1])  # type: ignore[index]
    if is_paired:
        _paired_main(script, [name for name in contenders if name != "bare"], columns, title, repeat, args.rounds,
                     together=is_together, block=args.block)
        return
    runs: Runs = {name: [] for name in contenders}
    for _ in range(repeat):  # in turns, so a slow phase of the machine hits every contender alike
        for name in contenders:
            runs[name].append(run_contender(script, name, "--iterations", str(iterations)))
    rows = [(name, combine(results)) for name, results in runs.items()]
    print(table(f"{title} ({machine()}; {iterations} calls x 5 rounds, median of {repeat} interpreters)", rows,
                columns))
    if footer is not None:
        print(footer(rows, runs))  # with every interpreter's result, for per-round figures


def _paired_main(script: str, contenders: Sequence[str], columns: Sequence[str], title: str, repeat: int,
                 rounds: int, together: bool = False, block: int | None = None) -> None:
    """Run the paired measurement ``repeat`` times and print the table: each contender in an
    interpreter of its own, in turns, or (``together``) all of them side by side in one;
    ``block``: calls per block, if not the benchmark's own."""
    runs: Runs = {name: [] for name in contenders}
    options = ["--rounds", str(rounds), *(["--block", str(block)] if block else [])]
    for _ in range(repeat):
        if together:
            result = run_contender(script, ",".join(contenders), "--paired", "--together", *options, timeout=3600)
            for name in contenders:
                runs[name].append(result if not result or "skipped" in result else result[name])
            continue
        for name in contenders:
            runs[name].append(run_contender(script, name, "--paired", *options, timeout=3600))
    rows = [(name, _combine_paired(results, columns)) for name, results in runs.items()]
    how = "paired, contenders side by side in each interpreter" if together else "paired"
    blocks = f"{block} calls per block, " if block else ""
    print(paired_table(f"{title}, {how} ({machine()}; {blocks}{rounds} rounds per column, median of {repeat} "
                       f"interpreter{'s' if repeat > 1 else ''})", rows, columns, runs))


def _combine_paired(results: Sequence[dict[str, Any] | None], columns: Sequence[str]) -> dict[str, Any] | None:
    """The median over interpreters of each column's added time (and of its quartiles)."""
    for result in results:
        if not result or "skipped" in result:
            return result
    return {column: {key: statistics.median(r[column][key] for r in results if r is not None)
                     for key in ("added", "q1", "q3", "off")} for column in columns}


def paired_table(title: str, rows: Sequence[tuple[str, dict[str, Any] | None]], columns: Sequence[str],
                 runs: Runs | None = None, ours: str = "autotrace") -> str:
    """Added µs per call (quartiles of the rounds) and as a share of the bare call measured beside
    it; then ours over the fastest other contender's, in µs and in shares of the bare call (which
    cancels a change of the machine's speed between the contenders' interpreters), with the range
    of the latter over the repetitions (``runs``)."""
    header = f"{'contender':<28}" + "".join(f"{c + ' +µs':>16}{'(q1-q3)':>12}{'+%':>7}" for c in columns)
    lines = [title, header, "-" * len(header)]
    measured = {name: result for name, result in rows if result and "skipped" not in result}
    for name, result in rows:
        if name not in measured:
            lines.append(f"{name:<28}skipped: {(result or {}).get('skipped', 'not installed')}")
            continue
        cells = "".join(f"{result[c]['added']:>16.1f}{result[c]['q1']:>6.0f}-{result[c]['q3']:<5.0f}"  # type: ignore[index]
                        f"{_share(result[c]):>7.1%}" for c in columns)  # type: ignore[index]
        lines.append(f"{name:<28}{cells}")
    others = [name for name in measured if not name.startswith(ours)]
    ours_measured = [name for name in measured if name.startswith(ours)]
    if others and ours_measured:
        lines.append(f"added time of {ours} over the fastest other library's (target: at most 0.5): in µs; in shares "
                     "of the bare call, and their range over the repetitions")
        for name in ours_measured:
            cells = []
            for column in columns:
                fastest = min(others, key=lambda other: _share(measured[other][column]))
                plain = measured[name][column]["added"] / measured[fastest][column]["added"]
                share = _share(measured[name][column]) / _share(measured[fastest][column])
                spread = _repetition_ratios(runs or {}, name, others, column)
                cells.append(f"{column} {plain:.2f}, {share:.2f}"
                             + (f" ({min(spread):.2f}-{max(spread):.2f})" if len(spread) > 1 else "") + f" vs {fastest}")
            lines.append(f"  {name:<26}" + "; ".join(cells))
    return "\n".join(lines)


def _share(cell: dict[str, float]) -> float:
    """Added time as a share of the bare call measured beside it."""
    return cell["added"] / cell["off"]


def _repetition_ratios(runs: Runs, ours: str, others: Sequence[str], column: str) -> list[float]:
    """Ours over the fastest other contender's share of the bare call, within each repetition."""
    ratios = []
    for index, result in enumerate(runs.get(ours, [])):
        try:
            fastest = min(_share(runs[name][index][column]) for name in others)  # type: ignore[index]
            ratios.append(_share(result[column]) / fastest)  # type: ignore[index]
        except (TypeError, KeyError, IndexError):  # a contender skipped in that repetition
            continue
    return ratios


def combine(results: Sequence[dict[str, Any] | None]) -> dict[str, Any] | None:
    """One row from a contender's runs: the median of each number; skipped if any run was."""
    for result in results:
        if not result or "skipped" in result:
            return result
    first = results[0]
    assert first is not None
    combined = dict(first)
    for key, value in first.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            combined[key] = statistics.median(r[key] for r in results if r is not None and key in r)
    return combined


def emit(result: dict[str, Any]) -> None:
    """Print a contender's result for the parent process."""
    print(json.dumps(result))


def table(title: str, rows: Sequence[tuple[str, dict[str, Any] | None]], columns: Sequence[str],
          baseline: str = "bare") -> str:
    """Rows of µs/call with the added µs and ratio against the baseline row, per column."""
    base = dict(rows).get(baseline) or {}
    header = f"{'contender':<28}" + "".join(f"{c + ' µs':>14}{'+µs':>10}{'x bare':>9}" for c in columns)
    lines = [title, header, "-" * len(header)]
    for name, result in rows:
        if not result or "skipped" in result:
            lines.append(f"{name:<28}skipped: {(result or {}).get('skipped', 'not installed')}")
            continue
        cells = ""
        for column in columns:
            value, ref = result.get(column), base.get(column)
            if value is None:
                cells += f"{'-':>14}{'':>10}{'':>9}"
                continue
            added = value - ref if ref else 0.0
            ratio = value / ref if ref else 1.0
            cells += f"{value:>14.1f}{added:>+10.1f}{ratio:>9.3f}"
        lines.append(f"{name:<28}{cells}")
    return "\n".join(lines)


def machine() -> str:
    """One line describing the machine and interpreter."""
    return (f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")
