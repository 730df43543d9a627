"""Run every benchmark in turn (``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

SCRIPTS = ("bench_openai.py", "bench_integrations.py", "bench_pipeline.py", "bench_hot_loop.py",
           "bench_startup.py", "bench_memory.py", "bench_instructions.py")

for script in SCRIPTS:
    print(f"\n## {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=False)
