"""Documents longer than the context window: recall and precision of planted records, requests and billed
tokens per document, and client CPU per MB, chunked vs the same bytes sent once.

    python benchmarks/bench_long.py [--quick] [--sizes 10000,100000,1000000] [--rounds 3]
    python benchmarks/bench_long.py --local [--local-chars 20000] [--local-max-tokens 600]

Against the oracle test server (it answers exactly the `RECORD id=... name=...` lines in the chunk it is
sent) with an 8,192-token window for the model. Per size: recall (planted records found) and precision
(found records that are planted and not repeated), the requests and billed prompt/completion tokens per
document, and the client's CPU per MB of document. The client runs `aextract` on this thread's event
loop while the server answers from its own thread, so `time.thread_time()` on this thread is the client's
CPU alone. The baseline is the same document sent in one request (`chunking="off"`) to a server whose
window is large enough: the target is chunked CPU per MB <= 2x that baseline, recall and precision 100%.

`--local` measures the embedded model instead (slow: tens of tokens per second, minutes per run): recall
of the planted records in a 20K-character document, chunked to the embedded model's 4,096-token window,
vs the same document sent unchunked to the same model loaded with a context that holds it whole
(`--local-whole-ctx`; the `llamacpp` record, which names no window and uses the same request mode). Both
greedy (temperature 0) with the same `max_tokens` per request; records are planted sparsely (one per
`--local-every` characters) so every record fits that reply. Recorded, no target.
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
from extract.errors import ExtractError
from extract.testing import TestServer
from extract.testing._oracle import RECORD_PATTERN, planted_document

MODEL = "llama3.1-8b"
WINDOW = 8192
BIG = "whole-model"
TARGET_CPU_RATIO = 2.0

Row = dict[str, Any]


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


def _local_once(text: str, planted: list[tuple[str, str, int, int]], *, whole: bool, **options: Any) -> Row:
    from extract.local import LocalTransport

    n_ctx = options.pop("n_ctx")
    transport = LocalTransport(n_ctx=n_ctx)
    transport.load()  # the load is not part of the timing
    provider = "llamacpp" if whole else "local"  # llamacpp: same mode, no 4,096-token record window
    truth = Counter((rid, name) for rid, name, _, _ in planted)
    names = {name for _, name, _, _ in planted}
    with Extractor(transport=transport, model=transport.model_name, provider=provider) as extractor:
        started = time.perf_counter()
        try:
            result: Any = extractor.extract(Doc, text, full=True, temperature=0, **options)
        except ExtractError as exc:  # recorded as a row: a refusal or a failed validation finds nothing
            return {
                "how": "whole" if whole else "chunked",
                "n_ctx": n_ctx,
                "error": type(exc).__name__,
                "seconds": time.perf_counter() - started,
                "recall": 0.0,
                "name_recall": 0.0,
                "precision": 0.0,
                "chunks": 1,
                "requests": 0,
                "completion_tokens": 0,
                "complete": False,
            }
        seconds = time.perf_counter() - started
    found = Counter((r.id, r.name) for r in result.value.records)
    correct = sum((found & truth).values())
    return {
        "how": "whole" if whole else "chunked",
        "n_ctx": n_ctx,
        "error": "",
        "seconds": seconds,
        "recall": correct / max(len(planted), 1),
        "name_recall": len(names & {r.name for r in result.value.records}) / max(len(names), 1),
        "precision": correct / max(sum(found.values()), 1),
        "chunks": max(len(result.chunks), 1),
        "requests": sum(c.attempts for c in result.chunks) or len(result.attempts),
        "completion_tokens": result.usage.completion_tokens,
        "complete": result.complete,
    }


def measure_local(chars: int, max_tokens: int, every: int, whole_ctx: int) -> list[Row]:
    """Chunked on the default 4,096-token context vs whole on a context that fits it; one run each."""
    from extract.local import DEFAULT_N_CTX

    text, planted = planted_document(chars, seed=chars, every=every)
    return [
        {"chars": len(text), "records": len(planted), **row}
        for row in (
            _local_once(text, planted, whole=False, n_ctx=DEFAULT_N_CTX, max_tokens=max_tokens),
            _local_once(text, planted, whole=True, n_ctx=whole_ctx, max_tokens=max_tokens, chunking="off"),
        )
    ]


def _print_local(rows: list[Row], max_tokens: int) -> None:
    print(f"# bench_long --local: embedded model, greedy, max_tokens={max_tokens} per request\n")
    print(
        "| chars | records | sent | n_ctx | chunks | requests | recall (id+name) | name recall | precision "
        "| completion tok | complete | seconds | error |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
    for r in rows:
        print(
            f"| {r['chars']:,} | {r['records']} | {r['how']} | {r['n_ctx']} | {r['chunks']} | {r['requests']} "
            f"| {r['recall']:.1%} | {r['name_recall']:.1%} | {r['precision']:.1%} | {r['completion_tokens']} "
            f"| {r['complete']} | {r['seconds']:.1f} | {r['error']} |"
        )


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one small round: proves it runs")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--local", action="store_true", help="the embedded model, chunked vs whole (slow)")
    parser.add_argument("--local-chars", type=int, default=20_000)
    parser.add_argument("--local-max-tokens", type=int, default=600, help="reply tokens per request")
    parser.add_argument("--local-every", type=int, default=800, help="characters per planted record")
    parser.add_argument("--local-whole-ctx", type=int, default=12288, help="n_ctx of the unchunked run")
    args = parser.parse_args(argv)
    if args.local:
        local = measure_local(args.local_chars, args.local_max_tokens, args.local_every, args.local_whole_ctx)
        _print_local(local, args.local_max_tokens)
        return local
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
