"""The embedded model (SmolLM2-135M through llama.cpp): cold start and generation speed.

Cold start: a fresh `python` process with no API key imports extract, loads the model and runs one
extraction (wall time from spawn to exit; the child also reports its import and first-extraction times).
Throughput: in this process, a few extractions per thread count; tokens per second is completion tokens
over the time spent inside the model calls (each attempt's latency: prompt processing and generation,
without the engine's own work); latency is the whole extraction.

    python benchmarks/bench_local.py [--quick] [--cold-runs N] [--extractions N] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import REPO_ROOT, Row, markdown_table

TEXTS = (
    "Hello! My name is Maria Lopez and I am the head of procurement at Northwind Traders, based in Lisbon.",
    "Hi, this is Kenji Sato, logistics manager at Blue Harbor Shipping in Osaka. Please call me back.",
    "Dear team, I'm Amara Okafor, CFO of Greenfield Solar in Lagos. We would like a demo next week.",
    "Best regards, Lukas Brandt, Senior Engineer, Alpenwerk GmbH, Munich.",
)

_CHILD = """
import json, time
t0 = time.perf_counter()
from extract.core import Extractor
from extract.cli._demo import demo_inputs
t1 = time.perf_counter()
schema, text = demo_inputs()
with Extractor() as extractor:
    result = extractor.extract(schema, text, full=True, temperature=0)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_extraction_s": t2 - t1, "mode": result.mode,
                  "completion_tokens": result.usage.completion_tokens}))
"""


def _no_key_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in {"CEREBRAS_API_KEY", "CEREBRAS_BASE_URL"}}


def cold_start(runs: int) -> list[Row]:
    walls: list[float] = []
    imports: list[float] = []
    firsts: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _CHILD],
            env=_no_key_env(),
            capture_output=True,
            text=True,
            timeout=600,
            cwd=REPO_ROOT,
        )
        walls.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise RuntimeError(f"cold-start child failed:\n{done.stderr[-2000:]}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        imports.append(report["import_s"])
        firsts.append(report["first_extraction_s"])
    return [
        {
            "measure": f"cold start, fresh process (median of {runs})",
            "value": statistics.median(walls),
            "unit": "s wall",
            "detail": f"import {statistics.median(imports):.2f} s + model load and first extraction "
            f"{statistics.median(firsts):.2f} s",
        }
    ]


def throughput(threads: Sequence[int | None], extractions: int) -> list[Row]:
    from extract.cli._demo import demo_inputs
    from extract.core import Extractor
    from extract.local import LocalTransport, _default_threads

    schema, _ = demo_inputs()
    rows: list[Row] = []
    for n_threads in threads:
        transport = LocalTransport(n_threads=n_threads)
        label = f"{_default_threads()} (default)" if n_threads is None else str(n_threads)
        transport.load()
        with Extractor(transport=transport, model=transport.model_name, provider="local") as extractor:
            extractor.extract(schema, TEXTS[0], temperature=0)  # warm-up: grammar and prompt caches
            tokens = 0
            generation_s = 0.0
            latencies: list[float] = []
            for i in range(extractions):
                started = time.perf_counter()
                result: Any = extractor.extract(schema, TEXTS[i % len(TEXTS)], full=True, temperature=0)
                latencies.append(time.perf_counter() - started)
                tokens += result.usage.completion_tokens
                generation_s += sum(attempt.latency_s for attempt in result.attempts)
        rows.append(
            {
                "measure": f"generation speed, n_threads={label}",
                "value": tokens / generation_s if generation_s else float("nan"),
                "unit": "completion tokens/s of model time",
                "detail": f"{tokens} tokens in {generation_s:.2f} s over {extractions} extractions; "
                f"median extraction {statistics.median(latencies):.2f} s",
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 cold run, 3 extractions, the default thread count only"
    )
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--extractions", type=int, default=8)
    parser.add_argument(
        "--threads",
        default=None,
        help="comma-separated n_threads values (default: the default, 1, all cores)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.cold_runs, args.extractions = 1, 3
    from extract.local import _default_threads

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if args.threads:
        threads: list[int | None] = [int(t) for t in args.threads.split(",")]
    else:
        # None is LocalTransport's default (all cores but one); all cores shows why it is not the default.
        threads = [None] if args.quick else [None, *sorted({1, cores} - {_default_threads()})]
    rows = cold_start(args.cold_runs) + throughput(threads, args.extractions)
    print(markdown_table(rows))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load is not None:
        print(
            f"\n{cores} cores; load average at the end {load[0]:.2f} (other work on the machine skews these)."
        )
    return rows


if __name__ == "__main__":
    main()
