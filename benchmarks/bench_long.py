"""Documents longer than the context window: recall and precision of planted records, requests and billed
tokens per document, and client CPU per MB, chunked vs the same bytes sent once.

    python benchmarks/bench_long.py [--quick] [--sizes 10000,100000,1000000] [--rounds 3]

Against the oracle test server (it answers exactly the `RECORD id=... name=...` lines in the chunk it is
sent) with an 8,192-token window for the model. Per size: recall (planted records found) and precision
(found records that are planted and not repeated), the requests and billed prompt/completion tokens per
document, and the client's CPU per MB of document. The client runs `aextract` on this thread's event
loop while the server answers from its own thread, so `time.thread_time()` on this thread is the client's
CPU alone. The baseline is the same document sent in one request (`chunking="off"`) to a server whose
window is large enough: the target is chunked CPU per MB <= 2x that baseline, recall and precision 100%.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import BaseModel

from extract.core import Extractor
from extract.documents import Part, estimate_tokens, merge_parts, split_text
from extract.testing import TestServer
from extract.testing._oracle import RECORD_PATTERN, planted_document

MODEL = "llama3.1-8b"
WINDOW = 8192
BIG = "whole-model"
TARGET_CPU_RATIO = 2.0


class Rec(BaseModel):
    id: str
    name: str


class Doc(BaseModel):
    records: list[Rec]


async def _timed(extractor: Extractor, text: str, **options: Any) -> tuple[Any, float]:
    # steady state: the connection pools, compiled schemas and learned window exist after one run
    await extractor.aextract(Doc, text, full=True, **options)
    started = time.thread_time()
    result = await extractor.aextract(Doc, text, full=True, **options)
    return result, time.thread_time() - started


def _measure(size: int, rounds: int) -> dict[str, Any]:
    text, planted = planted_document(size, seed=size)
    truth = Counter((rid, name) for rid, name, _, _ in planted)
    chunked_cpu: list[float] = []
    whole_cpu: list[float] = []
    row: dict[str, Any] = {}
    for _ in range(rounds):
        with TestServer(context_windows={MODEL: WINDOW}, oracle=RECORD_PATTERN, record=False) as server:
            extractor = Extractor(base_url=server.base_url, api_key="k", model=MODEL, provider="cerebras")
            result, cpu = asyncio.run(_timed(extractor, text))
            chunked_cpu.append(cpu)
            found = Counter((r.id, r.name) for r in result.value.records)
            correct = sum((found & truth).values())
            row = {
                "chars": len(text),
                "records": len(planted),
                "chunks": max(len(result.chunks), 1),
                "recall": correct / max(len(planted), 1),
                "precision": correct / max(sum(found.values()), 1),
                "requests": sum(c.attempts for c in result.chunks) or len(result.attempts),
                "prompt_tokens": result.usage.prompt_tokens,
                "completion_tokens": result.usage.completion_tokens,
                "complete": result.complete,
                "chunk_tokens": max(estimate_tokens(text[c.start : c.end]) for c in result.chunks)
                if result.chunks
                else 10**9,
                "overlap_tokens": 400,
            }
        # the baseline model has no window in the provider record and a huge one on this server
        with TestServer(
            models=(BIG,), context_windows={BIG: 10**8}, oracle=RECORD_PATTERN, record=False
        ) as server:
            extractor = Extractor(base_url=server.base_url, api_key="k", model=BIG, provider="cerebras")
            _, cpu = asyncio.run(_timed(extractor, text, chunking="off"))
            whole_cpu.append(cpu)
    schema = Doc.model_json_schema()
    started = time.process_time()
    for _ in range(rounds):
        pieces = split_text(text, row["chunk_tokens"], row["overlap_tokens"])
        parts = [Part(c.start, c.end, {"records": []}) for c in pieces]
        merge_parts(schema, parts)
    logic = (time.process_time() - started) / rounds
    mb = len(text.encode()) / 1e6
    row["logic_ms_per_mb"] = logic * 1000 / mb
    row["cpu_ms_per_mb"] = statistics.median(chunked_cpu) * 1000 / mb
    row["whole_cpu_ms_per_mb"] = statistics.median(whole_cpu) * 1000 / mb
    row["cpu_ratio"] = row["cpu_ms_per_mb"] / max(row["whole_cpu_ms_per_mb"], 1e-9)
    return row


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one small round: proves it runs")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [10_000, 100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    rounds = 1 if args.quick else max(1, args.rounds)
    rows = [_measure(size, rounds) for size in sizes]
    print(f"# bench_long: {MODEL} with a {WINDOW}-token window, oracle server, median of {rounds} round(s)\n")
    print(
        "| chars | records | chunks | recall | precision | requests | prompt tok | completion tok "
        "| client CPU ms/MB | same bytes once ms/MB | ratio (target <= 2) | split+merge ms/MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['chars']:,} | {r['records']:,} | {r['chunks']} | {r['recall']:.1%} | {r['precision']:.1%} "
            f"| {r['requests']} | {r['prompt_tokens']:,} | {r['completion_tokens']:,} | {r['cpu_ms_per_mb']:.0f} "
            f"| {r['whole_cpu_ms_per_mb']:.0f} | {r['cpu_ratio']:.2f} | {r['logic_ms_per_mb']:.1f} |"
        )
    return rows


if __name__ == "__main__":
    main()
