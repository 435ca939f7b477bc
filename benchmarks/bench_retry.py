"""Retry economy: what a 30% rate of schema-breaking first replies costs each library.

The loopback server answers a first-turn request with a schema-violating value with probability 0.3
(seeded; the draw is per distinct request, so each library sees about 30% bad first replies). Each
library extracts the same N documents at its own default attempt limit, through a counting proxy
that sums the usage the server reports, so failed attempts are counted the same way for everyone.

Reported per library: requests per success, prompt tokens per success, success rate.

    python benchmarks/bench_retry.py [--quick] [--docs N] [--rate 0.3] [--seed 7]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import CountingProxy, Row, Unavailable, markdown_table, server_processes
from benchmarks.peers import FACTORIES, document, make

NAME = "retry"
SYSTEMS = ("extract", "instructor", "pydantic-ai", "openai-sdk-untitled", "floor")


def run_system(name: str, upstream: str, docs: int, long: bool) -> Row:
    row: Row = {"system": name, "documents": "letter (~700 tokens)" if long else "short (~60 tokens)"}
    with CountingProxy(upstream) as proxy:
        try:
            peer = make(name, proxy.base_url)
        except Unavailable as exc:
            row["status"] = f"skipped: {exc}"
            return row
        except Exception as exc:  # a library that cannot even be set up is a finding, not a crash
            row["status"] = f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
            return row
        successes = 0
        errors: dict[str, int] = {}
        try:
            for i in range(docs):
                try:
                    peer.run(document(i, long=long))
                    successes += 1
                except Exception as exc:  # a failed extraction is the figure we count, not a crash
                    kind = type(exc).__name__
                    errors[kind] = errors.get(kind, 0) + 1
        finally:
            peer.close()
        tally = proxy.tally
    row["default attempts"] = peer.attempts
    row["wire"] = ", ".join(sorted(tally.formats))
    row["docs"] = docs
    row["success %"] = 100.0 * successes / docs if docs else float("nan")
    row["requests"] = tally.requests
    row["requests / success"] = tally.requests / successes if successes else float("nan")
    row["prompt tokens / success"] = tally.prompt_tokens / successes if successes else float("nan")
    first = tally.requests - tally.reasks
    row["prompt tokens / first request"] = (
        (tally.prompt_tokens - tally.reask_prompt_tokens) / first if first else float("nan")
    )
    row["prompt tokens / re-ask"] = tally.reask_prompt_tokens / tally.reasks if tally.reasks else float("nan")
    row["completion tokens / success"] = tally.completion_tokens / successes if successes else float("nan")
    row["status"] = "ok" + (f" (failures: {errors})" if errors else "")
    return row


def summary(rows: Sequence[Row]) -> list[str]:
    lines: list[str] = []
    for docs in dict.fromkeys(str(r["documents"]) for r in rows):
        by = {
            str(r["system"]): r
            for r in rows
            if r["documents"] == docs and str(r.get("status", "")).startswith("ok")
        }
        ours = by.get("extract")
        if ours is None:
            lines.append(f"{docs}: extract did not run")
            continue
        for peer in ("instructor", "pydantic-ai"):
            theirs = by.get(peer)
            if theirs is None:
                lines.append(f"{docs}: {peer} did not run")
                continue
            a, b = float(ours["prompt tokens / success"]), float(theirs["prompt tokens / success"])
            verdict = "met" if a < b else "MISSED"
            lines.append(
                f"{docs}: prompt tokens / success, extract {a:,.0f} vs {peer} {b:,.0f} "
                f"({a / b:.2f}x; target < 1x): {verdict}"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> list[Row]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="6 documents: proves it runs")
    p.add_argument("--docs", type=int, help="documents per library and size (default 200, quick 6)")
    p.add_argument("--rate", type=float, default=0.3, help="share of first replies that break the schema")
    p.add_argument("--seed", type=int, default=7, help="server seed (the same for every library)")
    p.add_argument(
        "--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ",".join(SYSTEMS)
    )
    p.add_argument("--sizes", default="short,long", help="document sizes: short (~60 tokens), long (~700)")
    args = p.parse_args(argv)
    docs = args.docs or (6 if args.quick else 200)
    systems = [s for s in args.systems.split(",") if s]
    unknown = [s for s in systems if s not in FACTORIES]
    if unknown:
        raise SystemExit(f"unknown system(s) {unknown}; choose from {', '.join(FACTORIES)}")
    sizes = [s for s in args.sizes.split(",") if s]
    if set(sizes) - {"short", "long"}:
        raise SystemExit(f"--sizes takes short and/or long, not {args.sizes!r}")
    rows = []
    # One server per library, same seed: nobody inherits another's "already seen" requests (the
    # server draws the invalid reply once per distinct request). Short and long documents differ,
    # so one server serves both sizes.
    with server_processes(len(systems), invalid_rate=args.rate, seed=args.seed) as urls:
        for size in sizes:
            for name, base_url in zip(systems, urls, strict=True):
                rows.append(run_system(name, base_url, docs, size == "long"))
    return rows


if __name__ == "__main__":
    result = main()
    print(markdown_table(result))
    print()
    print("\n".join(summary(result)))
