"""The CLI's read side on a large local store: one trace of 20,000 nested observations (inputs and
outputs of a few KB) in a store of 200,000 observations over 5,000 traces and 3 tenants.

    python benchmarks/bench_cli.py [--dir DIR] [--repeat N] [--src SRC]

The records are made from templates that real traced code recorded (``autotrace.install()`` into a
temporary store), copied with new ids, times, tenants, inputs and outputs, and written through the
store's own ``write`` (its rate is printed: the export path's). Each command then runs in a fresh
interpreter (``python -m autotrace``), ``--repeat`` times: the table shows the median and best
wall time, and a digest of its stdout, so two runs (``--src`` points another checkout's ``src`` at
the same store) can be compared for byte-identical output. ``--dir`` keeps the store there and
reuses it on the next run.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TENANTS = ("acme", "globex", "initech")
TRACES = 5_000
PER_TRACE = 40  # 5,000 traces x 40 = 200,000 observations
BIG = 20_000
BATCH = 512  # records per write, as an export batch
_VOCABULARY = ("the agent reads the retrieved passage and answers with a short cited summary of policy "
               "refund order customer invoice shipping delay warranty account balance transfer")
_WORDS = _VOCABULARY.split()


def _text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)


def _templates(path: Path) -> dict[str, dict[str, Any]]:
    """One recorded observation per type, from real traced code."""
    import autotrace

    autotrace.install(local_store="on", local_store_path=path, integrations=(), export_interval=0.05)
    with autotrace.tenant("acme"), autotrace.trace_attributes(name="turn", user_id="u1", session_id="s1"):
        with autotrace.start_agent("agent", input={"question": "q"}) as agent:
            with autotrace.start_chain("step", input="x") as chain:
                with autotrace.start_retrieval("search", query="q", top_k=3, store="qdrant") as ret:
                    ret.update(documents=[{"id": "d1", "score": 0.9, "content": "c"}], doc_count=1)
                with autotrace.start_generation("answer", model="gpt-4o", input=[{"role": "user", "content": "q"}],
                                                prompt={"name": "qa", "version": 1},
                                                model_parameters={"temperature": 0.2}) as gen:
                    gen.update(usage={"input": 900, "output": 120, "total": 1020}, cost={"total": 0.0031},
                               output={"role": "assistant", "content": "a"})
                    gen.score("helpful", 0.8)
                with autotrace.start_tool("lookup", arguments={"order": 1}) as tool:
                    tool.set_output({"status": "shipped"})
                with autotrace.start_span("format") as span:
                    span.set_output("ok")
                chain.set_output("done")
            agent.set_output("answer")
    assert autotrace.flush(10.0)
    store = autotrace.local_store()
    assert store is not None
    records = {r["type"]: r for r in store.observations()}
    autotrace.shutdown()
    return records


class _Maker:
    """Copies of the templates with fresh ids, times and contents."""

    def __init__(self, templates: dict[str, dict[str, Any]], seed: int) -> None:
        self.templates = templates
        self.rng = random.Random(seed)
        self.clock = 1_700_000_000_000_000_000

    def trace_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def make(self, kind: str, trace_id: str, parent: str | None, tenant: str, io: int, **fields: Any) -> dict[str, Any]:
        rng = self.rng
        record = copy.deepcopy(self.templates[kind])
        self.clock += rng.randrange(1_000, 2_000_000)
        duration = rng.randrange(100_000, 900_000_000)
        record.update(trace_id=trace_id, id=f"{rng.getrandbits(64):016x}", parent_id=parent, tenant=tenant,
                      start_ns=self.clock, end_ns=self.clock + duration, duration_ms=duration / 1e6, **fields)
        if kind == "generation":
            record["input"] = [{"role": "system", "content": _text(rng, io // 2)},
                               {"role": "user", "content": _text(rng, io // 2)}]
            record["output"] = {"role": "assistant", "content": _text(rng, io // 3)}
            tokens = rng.randrange(200, 4_000)
            record["usage"] = {"input": tokens - 100, "output": 100, "total": tokens}
            record["cost"] = {"total": tokens * 3e-6}
            if rng.random() < 0.03:
                record.update(level="ERROR", error=True, status_message="RateLimitError: 429")
        elif kind == "retriever":
            record["documents"] = [{"id": f"d{i}", "score": rng.random(), "content": _text(rng, io // 6)}
                                   for i in range(4)]
            record["output"] = record["documents"]
        elif io:
            record["input"] = _text(rng, io // 2)
            record["output"] = _text(rng, io // 2)
        return record


def _big_trace(maker: _Maker) -> tuple[str, list[dict[str, Any]]]:
    """20,000 observations: an agent, 400 steps, each a retriever, generations, tools and nested spans."""
    trace_id = maker.trace_id()
    root = maker.make("agent", trace_id, None, "acme", 3_000)
    records = [root]
    kinds = ("retriever", "generation", "tool", "generation", "span")
    while len(records) < BIG:
        step = maker.make("chain", trace_id, root["id"], "acme", 2_000)
        records.append(step)
        parent = step["id"]
        for i in range(min(48, BIG - len(records))):
            record = maker.make(kinds[i % len(kinds)], trace_id, parent, "acme", 3_000)
            records.append(record)
            if record["type"] == "span":
                parent = record["id"]  # the next ones nest deeper, up to a few levels
            if i % 16 == 15:
                parent = step["id"]
    return trace_id, records


def _small_trace(maker: _Maker, index: int) -> list[dict[str, Any]]:
    trace_id = maker.trace_id()
    tenant = TENANTS[index % len(TENANTS)]
    root = maker.make("agent", trace_id, None, tenant, 600)
    records = [root]
    kinds = ("retriever", "generation", "tool", "span")
    parent = root["id"]
    for i in range(PER_TRACE - 1):
        kind = kinds[i % len(kinds)]
        prompt = {"name": "qa", "version": 1 + index % 2} if kind == "generation" else None
        fields = {"prompt": prompt} if prompt else {}
        record = maker.make(kind, trace_id, parent, tenant, 1_200, **fields)
        records.append(record)
        parent = record["id"] if kind == "span" and i % 8 == 3 else root["id"]
    return records


def build(path: Path) -> tuple[str, float]:
    """The store at ``path``; returns the big trace's id and the write rate (observations/s)."""
    from autotrace.export.local_store import LocalStore

    templates = _templates(path.with_name("templates.db"))
    maker = _Maker(templates, seed=7)
    big_id, big = _big_trace(maker)
    small = [r for i in range(TRACES - 1) for r in _small_trace(maker, i)]
    records = big + small
    store = LocalStore(path, retention_days=100_000)
    started = time.perf_counter()
    for at in range(0, len(records), BATCH):
        store.write(records[at:at + BATCH])
    rate = len(records) / (time.perf_counter() - started)
    rng = random.Random(11)
    for n, record in enumerate(r for r in records if r["type"] == "generation" and rng.random() < 0.2):
        store.add_score({"id": f"s{n}", "trace_id": record["trace_id"], "observation_id": record["id"],
                         "name": "helpful", "value": rng.random(), "data_type": "NUMERIC", "tenant": record["tenant"]})
    store.close()
    path.with_name("big_trace").write_text(big_id)
    return big_id, rate


def _commands(big: str) -> dict[str, list[str]]:
    return {
        "import autotrace.cli": ["-c", "import autotrace.cli"],
        "traces": ["-m", "autotrace", "traces"],
        "traces --limit 500 --json": ["-m", "autotrace", "traces", "--limit", "500", "--json"],
        "traces --tenant globex": ["-m", "autotrace", "traces", "--tenant", "globex"],
        "show (20k obs)": ["-m", "autotrace", "show", big[:12]],
        "show --json (20k obs)": ["-m", "autotrace", "show", big[:12], "--json"],
        "query 'level=error' --json": ["-m", "autotrace", "query", "level=error", "--json"],
        "query (scans all)": ["-m", "autotrace", "query", "type=tool and usage.total>5"],
        "compare --prompt qa 1 2": ["-m", "autotrace", "compare", "--prompt", "qa", "1", "2"],
    }


def _time(argv: list[str], db: Path, repeat: int, env: dict[str, str]) -> tuple[float, float, str, int]:
    """Median and best seconds of ``argv`` in a fresh interpreter, and its stdout's digest and size."""
    full = [sys.executable, *argv] + (["--db", str(db)] if argv[0] == "-m" else [])
    samples, digest, size = [], "", 0
    for _ in range(repeat):
        with tempfile.TemporaryFile() as out:
            started = time.perf_counter()
            result = subprocess.run(full, stdout=out, stderr=subprocess.PIPE, env=env, check=False)
            samples.append(time.perf_counter() - started)
            out.seek(0)
            data = out.read()
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.decode()[-500:]}")
        digest, size = hashlib.sha256(data).hexdigest()[:12], len(data)
    return statistics.median(samples), min(samples), digest, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", help="keep the store here (reused when present)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--src", help="run the CLI from this src directory (another checkout)")
    args = parser.parse_args()
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench_cli_"))
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "traces.db"
    if db.exists():
        big = (directory / "big_trace").read_text()
        print(f"store {db} (reused)")
    else:
        started = time.perf_counter()
        big, rate = build(db)
        print(f"store {db}: built in {time.perf_counter() - started:.1f} s; write: {rate:,.0f} observations/s, "
              f"{db.stat().st_size / 2**20:.0f} MiB")
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve())
    print(f"{'command':32} {'median s':>9} {'best s':>8}  {'stdout':>10}  sha256")
    for name, argv in _commands(big).items():
        median, best, digest, size = _time(argv, db, args.repeat, env)
        print(f"{name:32} {median:9.3f} {best:8.3f}  {size:>10,}  {digest}", flush=True)


if __name__ == "__main__":
    main()
