"""The one command for every benchmark: prints a markdown table per benchmark, then a summary.

    python benchmarks/run.py [--quick] [--only NAME[,NAME]]

Each benchmark starts what it needs (the loopback test server in its own process, a counting proxy);
results go to stdout and to benchmarks/results/latest.md (git-ignored), with the machine, the date,
the package versions and the command, ready to paste into BENCHMARKS.md.

Our benchmarks (overhead, retry, payload, coverage) are imported and return rows; the others (schema, batch,
local) run as their own scripts and their output is kept verbatim. A benchmark whose file does not
exist yet, or whose dependencies are missing, gets a "not yet" / "skipped" line instead of failing the run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import io
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import (
    REPO_ROOT,
    RESULTS_DIR,
    Row,
    Unavailable,
    machine_info,
    markdown_table,
    versions,
)

BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Bench:
    """One benchmark: `rows` benchmarks are ours (import, call main(argv) -> rows); others run as scripts."""

    name: str
    module: str
    title: str
    rows: bool
    quick_args: tuple[str, ...] = ("--quick",)
    full_args: tuple[str, ...] = ()


BENCHES: tuple[Bench, ...] = (
    Bench(
        "overhead", "bench_overhead", "Client overhead per extraction (loopback server, own process)", True
    ),
    Bench("retry", "bench_retry", "Retry economy at a 30% rate of invalid first replies", True),
    Bench(
        "payload",
        "bench_payload",
        "Request body encodings: bytes sent and client CPU per request (json, gzip, msgpack)",
        True,
        full_args=("--http", "--tls"),
    ),
    Bench("coverage", "bench_coverage", "Strict-schema coverage of JSONSchemaBench, extract vs peers", True),
    Bench("schema", "bench_schema", "Schema compiler over JSONSchemaBench", False, ("--limit", "15")),
    Bench("batch", "bench_batch", "Batch extraction", False, full_args=("--mem-docs", "100000")),
    Bench("local", "bench_local", "Embedded model", False),
    Bench("hostile", "bench_hostile", "Hostile inputs: replies, servers, schemas", False),
    Bench("reasoning", "bench_reasoning", "Reasoning effort: tokens and success per effort", True),
    Bench("long", "bench_long", "Long documents: recall, precision, requests and CPU per MB", False),
    Bench(
        "stream", "bench_stream", "Streaming: client CPU per reply, vs instructor, time to first field", False
    ),
    Bench("evidence", "bench_evidence", "Evidence: client CPU of evidence=True against evidence=False", True),
    Bench(
        "ray",
        "bench_ray",
        "Ray Data: throughput vs actors, share of a rate limit used, extract_dataset vs ray.data.llm",
        True,
    ),
)


@dataclass
class Outcome:
    bench: Bench
    status: str
    seconds: float
    command: str
    body: str = ""
    notes: tuple[str, ...] = ()


def _command(bench: Bench, quick: bool) -> list[str]:
    args = list(bench.quick_args) if quick else list(bench.full_args)
    return ["python", f"benchmarks/{bench.module}.py", *args]


def _summary_lines(bench: Bench, rows: Sequence[Row]) -> tuple[str, ...]:
    module = importlib.import_module(f"benchmarks.{bench.module}")
    summarise: Callable[[Sequence[Row]], list[str]] | None = getattr(module, "summary", None)
    return tuple(summarise(rows)) if summarise else ()


def run_ours(bench: Bench, quick: bool) -> Outcome:
    command = _command(bench, quick)
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.{bench.module}")
        rows: list[Row] = module.main(command[2:])
    except Unavailable as exc:
        return Outcome(bench, f"skipped: {exc}", time.perf_counter() - started, shlex.join(command))
    except Exception as exc:  # one broken benchmark must not hide the others' figures
        text = " ".join(str(exc).split())[:300]
        return Outcome(
            bench, f"failed: {type(exc).__name__}: {text}", time.perf_counter() - started, shlex.join(command)
        )
    return Outcome(
        bench,
        "ok",
        time.perf_counter() - started,
        shlex.join(command),
        markdown_table(rows),
        _summary_lines(bench, rows),
    )


def _supports(script: Path, flag: str) -> bool:
    try:
        done = subprocess.run(
            [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
        )
    except subprocess.TimeoutExpired:
        return False
    return flag in done.stdout


def run_theirs(bench: Bench, quick: bool) -> Outcome:
    script = BENCH_DIR / f"{bench.module}.py"
    command = _command(bench, quick)
    if not script.exists():
        return Outcome(
            bench, f"not yet: {script.relative_to(REPO_ROOT)} does not exist", 0.0, shlex.join(command)
        )
    if quick and bench.quick_args and not _supports(script, bench.quick_args[0]):
        command = command[:2]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, *command[1:]],
            capture_output=True,
            text=True,
            timeout=120 if quick else 420,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        return Outcome(
            bench, f"failed: timed out after {exc.timeout:.0f} s", exc.timeout or 0.0, shlex.join(command)
        )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:]) or f"exit code {done.returncode}"
        return Outcome(bench, f"failed: {tail[:300]}", seconds, shlex.join(command), done.stdout.strip())
    return Outcome(bench, "ok", seconds, shlex.join(command), done.stdout.strip())


def header(argv: Sequence[str]) -> str:
    machine = machine_info()
    lines = [
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `{shlex.join(['python', 'benchmarks/run.py', *argv])}`",
        f"- machine: {machine['nproc']} cores ({machine['cpu']}), {machine['ram']} RAM, "
        f"{machine['os']}, Python {machine['python']}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()),
        f"- load average when written: {os.getloadavg()[0]:.2f} (the machine is shared; CPU figures "
        "per call are steadier than calls/s)",
    ]
    return "\n".join(lines)


def section(o: Outcome) -> str:
    """One benchmark's part of the report: title, the command that reproduces it, its table."""
    parts = [f"## {o.bench.name}: {o.bench.title}", "", f"Command: `{o.command}` ({o.seconds:.0f} s)", ""]
    if o.status != "ok":
        parts += [f"_{o.status}_", ""]
    if o.body:
        parts += [o.body, ""]
    if o.notes:
        parts += [*(f"- {n}" for n in o.notes), ""]
    return "\n".join(parts)


def summary(outcomes: Sequence[Outcome]) -> str:
    parts = ["## Summary", ""]
    parts += [f"- {o.bench.name}: {o.status} ({o.seconds:.0f} s)" for o in outcomes]
    for o in outcomes:
        parts += [f"- {o.bench.name}: {n}" for n in o.notes]
    return "\n".join(parts) + "\n"


def render(outcomes: Sequence[Outcome], argv: Sequence[str]) -> str:
    return "\n".join(
        ["# Benchmark results", "", header(argv), "", *map(section, outcomes), summary(outcomes)]
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--quick", action="store_true", help="tiny counts: proves every benchmark runs (figures are noise)"
    )
    p.add_argument("--only", help="comma-separated benchmark names: " + ", ".join(b.name for b in BENCHES))
    p.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "latest.md", help="where to write the results"
    )
    args = p.parse_args(argv)
    chosen = list(BENCHES)
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {b.name for b in BENCHES}
        if unknown:
            p.error(
                f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(b.name for b in BENCHES)}"
            )
        chosen = [b for b in BENCHES if b.name in wanted]
    outcomes: list[Outcome] = []
    for bench in chosen:
        print(f"## {bench.name}: running ...", file=sys.stderr, flush=True)
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            outcome = run_ours(bench, args.quick) if bench.rows else run_theirs(bench, args.quick)
        outcomes.append(outcome)
        print(section(outcome), flush=True)
    print(summary(outcomes))
    report = render(outcomes, argv)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"written to {args.output}", file=sys.stderr)
    return 0 if all(not o.status.startswith("failed") for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
