"""Hostile inputs: what adversarial replies cost the client, as markdown tables, one section each.

    python benchmarks/bench_hostile.py [--quick]

Sections (add one by appending to SECTIONS: a function taking `quick` and returning markdown):

- reply parser: CPU time per MB of `parse_reply` on adversarial replies (nested brackets, repeated code
  fences, long strings, many small fragments, valid big JSON bare and wrapped in prose) at 200 KB, 1 MiB
  (the recovery bound, the worst case), 2 MB and 8 MB. Past the bound only the strict parse runs.
- re-ask size: the request body that follows a 20 MB bad reply, over real HTTP to a loopback TestServer.
- transport: `bench_hostile_transport.py` (peak RSS per request under endless bodies, deadline overshoot).
- schema: `bench_hostile_schema.py` (catastrophic patterns on RE2 vs Python re; deep and cyclic schemas).

CPU time (`time.process_time`) is reported rather than wall time: the machine may be shared.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import redirect_stdout
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import Row, markdown_table
from extract._engine.judge import REASK_EXCERPT_CHARS
from extract._reply import MAX_RECOVERY_CHARS, parse_reply

Section = Callable[[bool], str]
MB = 1_000_000


def _valid_rows(size: int) -> str:
    row = '{"id": 123456, "name": "Ada Lovelace", "tags": ["math", "engine"], "ok": true}'
    count = max(1, size // (len(row) + 1))
    return "[" + ",".join([row] * count) + "]"


REPLIES: dict[str, Callable[[int], str]] = {
    "nested [ (never closed)": lambda n: "[" * n,
    "nested [[...]] (balanced)": lambda n: "[" * (n // 2) + "]" * (n // 2),
    'nested {"a": (never closed)': lambda n: '{"a":' * (n // 5),
    "repeated ``` (one line)": lambda n: "```" * (n // 3),
    "repeated ```\\n fences": lambda n: "```\n" * (n // 4),
    "repeated ```json\\n{ fences": lambda n: "```json\n{" * (n // 9),
    "many small broken objects x{x}": lambda n: "x{x}" * (n // 4),
    "many small arrays [1]": lambda n: "[1]" * (n // 3),
    "long string in prose": lambda n: 'Sure: {"text": "' + "x" * (n - 30) + '"} done',
    "escaped quotes": lambda n: '"\\"' * (n // 3),
    "valid big JSON": _valid_rows,
    "valid big JSON in prose": lambda n: "Here it is:\n" + _valid_rows(n - 30) + "\nDone.",
    "valid big JSON, trailing commas, fenced": lambda n: (
        "```json\n" + _valid_rows(n - 20).replace("]}", "],}") + "\n```"
    ),
}


def parser_section(quick: bool) -> str:
    sizes = [20_000, 200_000] if quick else [200_000, MAX_RECOVERY_CHARS, 2 * MB, 8 * MB]
    rows: list[Row] = []
    for name, build in REPLIES.items():
        for size in sizes:
            content = build(size)
            started, wall = time.process_time(), time.perf_counter()
            result = parse_reply(content)
            cpu, wall = time.process_time() - started, time.perf_counter() - wall
            rows.append(
                {
                    "reply": name,
                    "chars": f"{len(content):,}",
                    "recovery": "scanned" if len(content) <= MAX_RECOVERY_CHARS else "strict only",
                    "verdict": result.kind.value,
                    "CPU s": round(cpu, 3),
                    "CPU s / MB": round(cpu / (len(content) / MB), 3),
                    "wall s": round(wall, 3),
                }
            )
    worst = max(rows, key=lambda row: float(row["CPU s / MB"]))
    return "\n".join(
        [
            f"Recovery bound: {MAX_RECOVERY_CHARS:,} characters (beyond it only the strict parse runs).",
            "",
            markdown_table(rows),
            "",
            f"Worst: {worst['CPU s / MB']} CPU s per MB ({worst['reply']}, {worst['chars']} chars).",
        ]
    )


def reask_section(quick: bool) -> str:
    import pydantic

    from extract.core import Extractor
    from extract.testing import Fault, TestServer

    class Person(pydantic.BaseModel):
        name: str
        age: int

    # 20 MB is over the default 16 MiB response cap (refused unread); 12 MB is read and re-asked
    sizes = [2 * MB] if quick else [12 * MB, 20 * MB]
    cases = [
        (f"{label} ({size // MB} MB)", bad)
        for size in sizes
        for label, bad in (("not JSON (x * n)", "x" * size), ("cut-off JSON array", '["' + "y" * (size - 2)))
    ]
    rows: list[Row] = []
    for label, bad in cases:
        row: Row = {"bad reply": label, "reply bytes": f"{len(bad):,}"}
        with TestServer(api_key="sk-bench") as server:
            server.script(Fault.content(bad))
            started = time.perf_counter()
            try:
                with Extractor(
                    base_url=server.base_url, api_key="sk-bench", model="llama3.1-8b", provider="cerebras"
                ) as ex:
                    ex.extract(Person, "Ada Lovelace was 36 years old.")
                row["outcome"] = "ok after a re-ask"
            except Exception as exc:  # a refused body (a size cap) is a figure too, not a crash
                row["outcome"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:80]}"
            row["wall s"] = round(time.perf_counter() - started, 2)
            requests = server.requests
        if len(requests) >= 2:
            row["1st request bytes"] = f"{len(requests[0].raw):,}"
            row["re-ask request bytes"] = f"{len(requests[1].raw):,}"
            row["growth bytes"] = f"{len(requests[1].raw) - len(requests[0].raw):,}"
        rows.append(row)
    return "\n".join(
        [
            f"Quoted excerpt bound: {REASK_EXCERPT_CHARS:,} characters of the bad reply (head + tail).",
            "",
            markdown_table(rows),
        ]
    )


def _captured(run: Callable[[list[str]], object], argv: list[str]) -> str:
    """A sibling benchmark's `main(argv)` as a section: what it prints."""
    out = io.StringIO()
    with redirect_stdout(out):
        run(argv)
    return out.getvalue().rstrip()


def transport_section(quick: bool) -> str:
    from benchmarks.bench_hostile_transport import main as run

    return _captured(run, ["--requests", "1", "--timeout", "1"] if quick else [])


def schema_section(quick: bool) -> str:
    from benchmarks.bench_hostile_schema import main as run

    return _captured(run, ["--repeat", "1"] if quick else [])


SECTIONS: list[tuple[str, Section]] = [
    ("Reply parser: CPU time per MB on adversarial replies", parser_section),
    ("Re-ask request size after a huge bad reply", reask_section),
    ("Transport: hostile servers (memory per request, deadline)", transport_section),
    ("Schemas: catastrophic patterns, deep and cyclic schemas", schema_section),
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes: proves every section runs")
    args = parser.parse_args(argv)
    for title, section in SECTIONS:
        print(f"### {title}\n")
        print(section(args.quick))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
