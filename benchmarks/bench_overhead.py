"""Client overhead: CPU microseconds per extraction and calls per second, extract vs peers vs the floor.

The loopback test server runs in its own process, so `time.process_time()` here counts only the
client: building the request, HTTP, parsing and validating the reply. Every system extracts the same
pydantic model (`benchmarks.peers.Invoice`) from the same documents, sync and async (async = the same
number of sequential awaits). Each figure is the median of several rounds after a warm-up.

    python benchmarks/bench_overhead.py [--quick] [--calls N] [--rounds R] [--systems a,b]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import (
    CountingProxy,
    Row,
    Timing,
    Unavailable,
    markdown_table,
    server_process,
    time_async,
    time_sync,
)
from benchmarks.peers import FACTORIES, Peer, document, make

NAME = "overhead"
SYSTEMS = ("floor", "extract", "openai-sdk", "openai-sdk-untitled", "instructor", "pydantic-ai")
TARGET_VS_FLOOR = 1.25
TARGET_PEER_VS_EXTRACT = 2.0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="tiny counts: proves it runs, figures are noise")
    p.add_argument("--calls", type=int, help="extractions per round (default 300, quick 10)")
    p.add_argument(
        "--rounds", type=int, help="rounds per system and mode; the median is reported (default 5)"
    )
    p.add_argument("--warmup", type=int, help="untimed extractions first (default 30, quick 2)")
    p.add_argument(
        "--systems", default=",".join(SYSTEMS), help="comma-separated subset of " + ",".join(SYSTEMS)
    )
    p.add_argument("--base-url", help="use this running server instead of starting the loopback one")
    return p


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}"


def _probe(name: str, base_url: str) -> str:
    """One untimed call through a counting proxy: which response_format the system really sends."""
    with CountingProxy(base_url) as proxy:
        peer = make(name, proxy.base_url)
        try:
            peer.run(document(10**6))
        finally:
            peer.close()
        return ", ".join(sorted(proxy.tally.formats))


def _measure_sync(name: str, base_url: str, calls: int, rounds: int, warmup: int) -> tuple[Peer, Timing]:
    peer = make(name, base_url)
    try:
        counter = iter(range(10**9))
        timing = time_sync(
            lambda: peer.run(document(next(counter))), calls=calls, rounds=rounds, warmup=warmup
        )
    finally:
        peer.close()
    return peer, timing


async def _measure_async(name: str, base_url: str, calls: int, rounds: int, warmup: int) -> Timing:
    # A fresh adapter inside the running loop: async clients are bound to the loop that first used them.
    peer = make(name, base_url)
    try:
        counter = iter(range(10**9))
        return await time_async(
            lambda: peer.arun(document(next(counter))), calls=calls, rounds=rounds, warmup=warmup
        )
    finally:
        await peer.aclose()


def run(base_url: str, systems: Sequence[str], calls: int, rounds: int, warmup: int) -> list[Row]:
    measured: dict[str, tuple[Timing | None, Timing | None]] = {}
    rows: list[Row] = []
    for name in systems:
        row: Row = {"system": name}
        sync_t: Timing | None = None
        async_t: Timing | None = None
        try:
            row["wire"] = _probe(name, base_url)
            gc.collect()
            peer, sync_t = _measure_sync(name, base_url, calls, rounds, warmup)
            row["how"] = peer.how
            gc.collect()
            async_t = asyncio.run(_measure_async(name, base_url, calls, rounds, warmup))
            row["status"] = "ok"
        except Unavailable as exc:
            row["status"] = f"skipped: {exc}"
        except Exception as exc:  # a peer that cannot run against the server is a finding, not a crash
            row["status"] = f"failed: {_describe(exc)}"
        measured[name] = (sync_t, async_t)
        row["sync CPU µs/call"] = sync_t.cpu_us_per_call if sync_t else float("nan")
        row["sync calls/s"] = sync_t.calls_per_s if sync_t else float("nan")
        row["async CPU µs/call"] = async_t.cpu_us_per_call if async_t else float("nan")
        row["async calls/s"] = async_t.calls_per_s if async_t else float("nan")
        row["CPU spread of rounds % (sync / async)"] = " / ".join(
            f"{t.spread_pct:.0f}" if t else "n/a" for t in (sync_t, async_t)
        )
        rows.append(row)

    def ratio(num: str, den: str, index: int) -> float:
        a, b = measured.get(num, (None, None))[index], measured.get(den, (None, None))[index]
        return a.cpu_us_per_call / b.cpu_us_per_call if a and b else float("nan")

    def pair(name: str, base: str) -> str:
        values = [ratio(name, base, i) for i in (0, 1)]
        return " / ".join("n/a" if v != v else f"{v:.2f}x" for v in values)

    for row in rows:
        name = str(row["system"])
        row["CPU vs floor (sync / async)"] = pair(name, "floor")
        row["CPU vs extract (sync / async)"] = pair(name, "extract")
    for row in rows:  # keep the status last: it can be long
        row["status"] = row.pop("status", "")
    return rows


def summary(rows: Sequence[Row]) -> list[str]:
    """One line per target: met, missed, or not measurable yet."""
    cpu = {
        str(r["system"]): (float(r["sync CPU µs/call"]), float(r["async CPU µs/call"]))
        for r in rows
        if r.get("status") == "ok"
    }
    lines: list[str] = []
    if "extract" in cpu and "floor" in cpu:
        for i, mode in enumerate(("sync", "async")):
            value = cpu["extract"][i] / cpu["floor"][i]
            verdict = "met" if value <= TARGET_VS_FLOOR else "MISSED"
            lines.append(
                f"extract / floor CPU ({mode}): {value:.2f}x (target <= {TARGET_VS_FLOOR}x): {verdict}"
            )
    else:
        lines.append("extract / floor CPU: not measured (extract or floor did not run)")
    if "openai-sdk" not in cpu and "openai-sdk-untitled" in cpu:
        lines.append("openai-sdk: its strict schema for Invoice was refused; figures use the title-free twin")
        cpu["openai-sdk"] = cpu["openai-sdk-untitled"]
    for peer in ("openai-sdk", "instructor", "pydantic-ai"):
        if peer in cpu and "extract" in cpu:
            for i, mode in enumerate(("sync", "async")):
                value = cpu[peer][i] / cpu["extract"][i]
                target = f" (target >= {TARGET_PEER_VS_EXTRACT}x)" if peer != "pydantic-ai" else ""
                verdict = ""
                if target:
                    verdict = ": met" if value >= TARGET_PEER_VS_EXTRACT else ": MISSED"
                lines.append(f"{peer} / extract CPU ({mode}): {value:.2f}x{target}{verdict}")
    return lines


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = _parser().parse_args(argv)
    calls = args.calls or (10 if args.quick else 300)
    rounds = args.rounds or (2 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 30)
    systems = [s for s in args.systems.split(",") if s]
    unknown = [s for s in systems if s not in FACTORIES]
    if unknown:
        raise SystemExit(f"unknown system(s) {unknown}; choose from {', '.join(SYSTEMS)}")
    if args.base_url:
        return run(args.base_url.rstrip("/"), systems, calls, rounds, warmup)
    with server_process() as base_url:
        return run(base_url, systems, calls, rounds, warmup)


if __name__ == "__main__":
    result = main()
    print(markdown_table(result))
    print()
    print("\n".join(summary(result)))
