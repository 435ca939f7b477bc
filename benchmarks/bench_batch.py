"""Batch extraction: extract_many vs the usual AsyncOpenAI + asyncio.gather + semaphore, side by side.

    python benchmarks/bench_batch.py [--docs 10000] [--concurrency 256] [--latency-ms 50] [--mem-docs N]
                                     [--tpm 600000 --time-scale 10 --limit-docs 2000] [--quick]

Scenarios, each client in its own subprocess (so its peak RSS is its own) against the test server in
another process:

1. throughput: N documents at concurrency C with L ms of server latency; wall time vs the ideal
   N x L / C (efficiency = ideal / wall), and the client's peak RSS (resource.getrusage maxrss).
2. the same job written the way users write it today: openai.AsyncOpenAI, asyncio.gather over every
   document, a semaphore for concurrency, json.loads + pydantic validation of each reply.
3. memory: --mem-docs documents through extract_many, peak RSS (the input is a generator: memory should
   not grow with N).
4. rate limit: a server enforcing a token-per-minute bucket (time-scaled); throughput as a % of that limit
   after the first full bucket, and the count of 429s the server returned.

The figures depend on the machine: on a small shared box both clients are bounded by CPU (the server is
pure Python too), so compare the rows with each other rather than with the ideal alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODEL = "llama3.1-8b"
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "city": {"type": "string"}},
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}


def _peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _docs(n: int) -> Any:
    for i in range(n):
        yield (f"d{i}", f"Record {i}: Ada Lovelace, aged {20 + i % 60}, lives in London.")


# ------------------------------------------------------------------------------------------ workers


def worker_extract(url: str, docs: int, concurrency: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from extract import extract_many
    from extract.schema import compile_schema

    compile_schema(SCHEMA)  # one-off start-up (imports, schema compile) is not what this measures
    started = time.perf_counter()
    ok = failed = tokens = prompt = 0
    run = extract_many(SCHEMA, _docs(docs), concurrency=concurrency, base_url=url, model=MODEL)
    with run:
        for outcome in run:
            if outcome.ok:
                ok += 1
            else:
                failed += 1
            tokens += outcome.usage.total_tokens
            prompt += outcome.usage.prompt_tokens
    wall = time.perf_counter() - started
    limiter = run._job._config.extractor.limiter
    stats = limiter.stats()
    return {
        "wall": wall,
        "ok": ok,
        "failed": failed,
        "tokens": tokens,
        "prompt": prompt,
        "reserved": stats.tokens_reserved,
        "throttled": stats.throttled,
        "rss_mb": _peak_rss_mb(),
    }


def worker_openai(url: str, docs: int, concurrency: int) -> dict[str, Any]:
    import openai
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        age: int
        city: str

    async def main() -> dict[str, Any]:
        client = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=2)
        sem = asyncio.Semaphore(concurrency)
        fmt = {"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": SCHEMA}}

        async def one(text: str) -> Any:
            async with sem:
                reply = await client.chat.completions.create(
                    model=MODEL,
                    messages=[
                        {"role": "system", "content": "Extract the person as JSON."},
                        {"role": "user", "content": text},
                    ],
                    response_format=fmt,  # type: ignore[arg-type]
                )
                return Person.model_validate(json.loads(reply.choices[0].message.content or "{}"))

        started = time.perf_counter()
        results = await asyncio.gather(*(one(text) for _, text in _docs(docs)), return_exceptions=True)
        wall = time.perf_counter() - started
        await client.close()
        ok = sum(1 for r in results if isinstance(r, Person))
        return {"wall": wall, "ok": ok, "failed": len(results) - ok, "rss_mb": _peak_rss_mb()}

    return asyncio.run(main())


# ------------------------------------------------------------------------------------------- driver


class Server:
    """`python -m extract.testing` in its own process; the first stdout line is the base URL."""

    def __init__(self, *flags: str) -> None:
        cmd = [sys.executable, "-m", "extract.testing", "--port", "0", *flags]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode().strip() if self.proc.stdout else ""
        if not line.startswith("http"):
            self.close()
            raise SystemExit(f"the test server did not start: {' '.join(cmd)}")
        self.url = line
        # keep draining stdout so the server never blocks on a full pipe
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        if self.proc.stdout is not None:
            for _ in self.proc.stdout:
                pass

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_worker(kind: str, url: str, docs: int, concurrency: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", kind, "--url", url, "--docs", str(docs)]
    cmd += ["--concurrency", str(concurrency)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEREBRAS_")}
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-3:]
        return {"error": " | ".join(tail) or f"exit {done.returncode}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--docs", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument(
        "--mem-docs", type=int, default=0, help="documents for the memory run (0: skip; 100000 in full)"
    )
    p.add_argument("--tpm", type=int, default=300_000, help="token limit for the rate-limit run (0: skip)")
    p.add_argument("--time-scale", type=float, default=2.0, help="simulated seconds per real second")
    p.add_argument("--limit-docs", type=int, default=600)
    p.add_argument("--skip-openai", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny counts: proves it runs (figures are noise)")
    p.add_argument("--worker", choices=("extract", "openai"), help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        fn = worker_extract if args.worker == "extract" else worker_openai
        print(json.dumps(fn(args.url, args.docs, args.concurrency)))
        return 0
    if args.quick:
        args.docs, args.mem_docs, args.limit_docs, args.concurrency = 300, 0, 200, 64

    print(
        f"# Batch extraction ({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()})\n"
    )
    print(
        f"command: python benchmarks/bench_batch.py {' '.join(argv if argv is not None else sys.argv[1:])}\n"
    )
    ideal = args.docs * args.latency_ms / 1000 / args.concurrency
    print(
        f"## Throughput: {args.docs} documents, concurrency {args.concurrency}, {args.latency_ms:.0f} ms latency"
    )
    print(f"ideal wall time (docs x latency / concurrency): {ideal:.2f}s\n")
    print(_row(["client", "ok", "failed", "wall (s)", "docs/s", "% of ideal", "peak RSS (MB)"]))
    print(_row(["---"] * 7))
    kinds = ["extract"] + ([] if args.skip_openai else ["openai"])
    with Server("--latency-ms", str(args.latency_ms)) as server:
        for kind in kinds:
            r = run_worker(kind, server.url, args.docs, args.concurrency)
            label = "extract_many" if kind == "extract" else "AsyncOpenAI + gather + semaphore"
            if "error" in r:
                print(_row([label, "-", "-", "-", "-", "-", r["error"]]))
                continue
            print(
                _row(
                    [
                        label,
                        r["ok"],
                        r["failed"],
                        f"{r['wall']:.2f}",
                        f"{args.docs / r['wall']:.0f}",
                        f"{100 * ideal / r['wall']:.0f}%",
                        f"{r['rss_mb']:.0f}",
                    ]
                )
            )
        if args.mem_docs:
            print(f"\n## Memory: {args.mem_docs} documents from a generator through extract_many\n")
            r = run_worker("extract", server.url, args.mem_docs, args.concurrency)
            if "error" in r:
                print(f"failed: {r['error']}")
            else:
                print(f"peak RSS {r['rss_mb']:.0f} MB, {r['ok']} ok, {r['failed']} failed, {r['wall']:.1f}s")

    if args.tpm:
        rate = args.tpm / 60 * args.time_scale
        print(
            f"\n## Rate limit: {args.limit_docs} documents, server bucket {args.tpm:,} tokens refilled at "
            f"{rate:,.0f} tokens/s (tpm {args.tpm:,}, time scale {args.time_scale})\n"
        )
        flags = ["--latency-ms", "20", "--tpm", str(args.tpm), "--time-scale", str(args.time_scale)]
        with Server(*flags) as server:
            r = run_worker("extract", server.url, args.limit_docs, args.concurrency)
        if "error" in r:
            print(f"failed: {r['error']}")
        else:
            # what the server charged: prompt tokens + max_completion_tokens (its default, 1024) per request
            # admitted; the first bucket is free, what follows can only come at the refill rate
            charged = r["prompt"] + 1024 * r["ok"]
            steady = max(charged - args.tpm, 0) / r["wall"]
            print(_row(["client", "ok", "failed", "wall (s)", "tokens charged", "% of limit", "429s"]))
            print(_row(["---"] * 7))
            print(
                _row(
                    [
                        "extract_many",
                        r["ok"],
                        r["failed"],
                        f"{r['wall']:.2f}",
                        f"{charged:,}",
                        f"{100 * steady / rate:.1f}%",
                        f"{r['throttled']} ({100 * r['throttled'] / max(r['ok'], 1):.1f}%)",
                    ]
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
