"""Streaming: client CPU to follow a 100 KB reply arriving in 1-token chunks, and time to the first field.

Part 1 (CPU, no network): one reply of ~100 KB of JSON (a list of records) split into ~4-character pieces
(about one token each), wrapped as the provider's SSE events. Rows:
  - unstreamed parse: `CompiledSchema.parse` of the whole content once (what `extract` does with a reply);
  - incremental parser: `IncrementalJson.feed` of every piece (the parse alone);
  - full streaming client: `Progress.feed` of every SSE event (SSE reading, incremental parse, partial
    decode, PartialModel instances at structural boundaries) plus the final parse;
  - re-parse (pydantic-core `from_json(allow_partial=True)` of the buffer) after every piece, and the same
    only at structural boundaries (after a value completes): the well-kept alternatives, O(n^2).
Part 2 (peer, loopback test server in this process): client CPU (`time.thread_time` of the calling thread, so
the server's threads are not counted) to stream the same reply in 4-character SSE events with
`Extractor.stream` and with instructor's `create_partial` (Mode.JSON_SCHEMA, over the OpenAI SDK), side by
side in one run; target: extract <= 0.5x instructor. instructor validates a partial model of the whole
buffer on every event (quadratic: a 100 KB reply takes it over ten minutes), so the peer size is
`--peer-kb` (default 10). Skipped with the reason where instructor is not importable.
Part 3 (wall time, loopback test server): time to the first partial (a complete field) and to the last
item for a ~4 KB reply in 4-character events, one every `--gap` seconds (default 1 ms, a model's token rate).

    python benchmarks/bench_stream.py [--kb 100] [--peer-kb 10] [--gap 0.001] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from pydantic import BaseModel
from pydantic_core import from_json

from benchmarks._harness import Row, markdown_table
from extract import Extractor
from extract._engine.streaming import NOTHING, Progress
from extract.schema import compile_schema
from extract.streaming import IncrementalJson
from extract.testing import Fault, TestServer
from extract.transports import StreamStart

NAME = "stream"
TOKEN_CHARS = 4
TARGET_VS_INSTRUCTOR = 0.5
NOTES: list[str] = []  # the peer table's verdict or why the instructor row was skipped (set by run)
MODEL = "llama3.1-8b"


class Record(BaseModel):
    id: int
    name: str
    tags: list[str]
    price: float
    active: bool


class Catalogue(BaseModel):
    title: str
    records: list[Record]


def _reply(kb: int) -> str:
    records = []
    i = 0
    while True:
        records.append(
            {
                "id": i,
                "name": f"item number {i}",
                "tags": ["a", "bb", "ccc"],
                "price": i * 1.25,
                "active": i % 2 == 0,
            }
        )
        i += 1
        if i % 50 == 0 and len(orjson.dumps(records)) >= kb * 1024:
            break
    return orjson.dumps({"title": "catalogue", "records": records}).decode()


def _events(content: str) -> list[bytes]:
    out = []
    for i in range(0, len(content), TOKEN_CHARS):
        chunk = {"choices": [{"index": 0, "delta": {"content": content[i : i + TOKEN_CHARS]}}]}
        out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
    out.append(b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
    return out


def _cpu(fn: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def cpu_rows(kb: int, rounds: int, reparse: bool) -> list[Row]:
    content = _reply(kb)
    pieces = [content[i : i + TOKEN_CHARS] for i in range(0, len(content), TOKEN_CHARS)]
    events = _events(content)
    compiled = compile_schema(Catalogue)

    def unstreamed() -> object:
        return compiled.parse(content)

    def incremental() -> object:
        parser = IncrementalJson()
        for piece in pieces:
            parser.feed(piece)
        return parser.root

    shown = [0]

    def full_client() -> object:
        progress = Progress(compiled)
        progress.begin(StreamStart(200, {}))
        count = 0
        for event in events:
            if progress.feed(event) is not NOTHING:
                count += 1
        shown[0] = count
        return compiled.parse(progress.end().data["choices"][0]["message"]["content"])

    def reparse_every_piece() -> object:
        buf = ""
        value = None
        for piece in pieces:
            buf += piece
            value = from_json(buf, allow_partial=True)
        return value

    def reparse_at_boundaries() -> object:
        parser = IncrementalJson()  # used only to find the boundaries
        buf = ""
        value = None
        for piece in pieces:
            buf += piece
            if parser.feed(piece):
                value = from_json(buf, allow_partial=True)
        return value

    base = _cpu(unstreamed, rounds)
    rows: list[Row] = []

    def row(what: str, seconds: float) -> None:
        rows.append(
            {
                "client work": what,
                "CPU ms": round(seconds * 1000, 2),
                "vs unstreamed": round(seconds / base, 1),
            }
        )
        if what.startswith("full"):
            rows[-1]["client work"] += f" [{shown[0]} partials]"

    row(f"unstreamed parse ({len(content) // 1024} KB, once)", base)
    row(f"incremental parser ({len(pieces)} pieces)", _cpu(incremental, rounds))
    row("full streaming client (SSE + parse + partial models)", _cpu(full_client, rounds))
    if reparse:
        row("pydantic-core from_json(allow_partial) every piece", _cpu(reparse_every_piece, 1))
        row("pydantic-core from_json(allow_partial) at boundaries", _cpu(reparse_at_boundaries, 1))
    return rows


def _instructor_client(base_url: str) -> tuple[Callable[[str], Iterator[Any]], Callable[[], None]] | str:
    """instructor's `create_partial` against `base_url`, or why it cannot run here."""
    try:
        import instructor
        import openai
    except ImportError as exc:
        return f"instructor is not importable in this Python ({exc.name}); run with a venv that has it"
    raw = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)
    client = instructor.from_openai(raw, mode=instructor.Mode.JSON_SCHEMA)

    def partials(text: str) -> Iterator[Any]:
        return iter(
            client.chat.completions.create_partial(
                model=MODEL,
                messages=[{"role": "user", "content": text}],
                response_model=Catalogue,
                max_retries=0,
            )
        )

    return partials, raw.close


def peer_rows(kb: int, rounds: int, *, with_instructor: bool = True) -> tuple[list[Row], list[str]]:
    """extract and instructor streaming the same reply from one test server, client-thread CPU."""
    text = "Catalogue of items with names, tags, prices and flags."
    content = _reply(kb)
    want = Catalogue.model_validate_json(content)
    rows: list[Row] = []
    notes: list[str] = []
    with TestServer(stream_chunk_chars=TOKEN_CHARS) as server:
        extractor = Extractor(base_url=server.base_url, api_key="k", model=MODEL)
        systems: dict[str, Callable[[str], Iterator[Any]]] = {
            "extract (Extractor.stream)": lambda t: iter(extractor.stream(Catalogue, t))
        }
        peer = _instructor_client(server.base_url) if with_instructor else None
        if isinstance(peer, str):
            notes.append(f"instructor row skipped: {peer}")
        elif peer is not None:
            systems["instructor (create_partial, Mode.JSON_SCHEMA)"] = peer[0]
        cpu: dict[str, float] = {}
        for name, partials in systems.items():
            best, items, last = float("inf"), 0, None
            for _ in range(rounds if name.startswith("extract") else 1):
                server.script(Fault.content(content))
                count = 0
                start = time.thread_time()
                for item in partials(text):
                    count += 1
                    last = item
                best = min(best, time.thread_time() - start)
                items = count
            same = last is not None and Catalogue.model_validate(last.model_dump()) == want
            cpu[name] = best
            rows.append(
                {
                    "client": name,
                    "reply KB": len(content) // 1024,
                    "SSE events": -(-len(content) // TOKEN_CHARS),
                    "items yielded": items,
                    "last item == reply": same,
                    "client CPU ms": round(best * 1000, 1),
                }
            )
        extractor.close()
        if peer is not None and not isinstance(peer, str):
            peer[1]()
    if len(cpu) == 2:
        ours, theirs = cpu.values()
        ratio = ours / theirs
        verdict = "met" if ratio <= TARGET_VS_INSTRUCTOR else "MISSED"
        notes.append(
            f"extract / instructor client CPU: {ratio:.3f}x (target <= {TARGET_VS_INSTRUCTOR}x): {verdict}"
        )
    return rows, notes


def latency_rows(gap: float, chunk_chars: int, runs: int, kb: int) -> list[Row]:
    """Wall time to the first partial and to the last item for a scripted reply of about `kb` KB."""
    text = "Catalogue of items with names, tags, prices and flags."
    content = _reply(kb)
    rows: list[Row] = []
    with TestServer(stream_chunk_chars=chunk_chars, stream_gap=gap) as server:
        extractor = Extractor(base_url=server.base_url, api_key="k", model="llama3.1-8b")
        extractor.extract(Catalogue, text)  # warm: compiled schema, connection
        firsts, lasts, counts = [], [], []
        for _ in range(runs):
            server.script(Fault.content(content))
            start = time.perf_counter()
            first = None
            items = 0
            for _item in extractor.stream(Catalogue, text):
                items += 1
                if first is None:
                    first = time.perf_counter() - start
            lasts.append(time.perf_counter() - start)
            firsts.append(first or 0.0)
            counts.append(items)
        extractor.close()
    firsts.sort()
    lasts.sort()
    rows.append(
        {
            "server pace": f"{gap * 1000:g} ms per {chunk_chars}-char event",
            "reply chars": len(content),
            "items yielded": counts[0],
            "first partial ms": round(firsts[len(firsts) // 2] * 1000, 1),
            "last item ms": round(lasts[len(lasts) // 2] * 1000, 1),
        }
    )
    return rows


def run(argv: Sequence[str] | None = None) -> dict[str, list[Row]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kb", type=int, default=100)
    parser.add_argument("--peer-kb", type=int, default=10, help="reply size of the instructor comparison")
    parser.add_argument("--gap", type=float, default=0.001)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run; figures are noise)")
    args = parser.parse_args(argv)
    kb, rounds, runs = (4, 1, 1) if args.quick else (args.kb, args.rounds, 3)
    peer, notes = peer_rows(1 if args.quick else args.peer_kb, rounds)
    if not args.quick and args.kb != args.peer_kb:  # extract alone end to end at the CPU table's size
        peer += peer_rows(args.kb, rounds, with_instructor=False)[0]
    NOTES[:] = notes
    return {
        "cpu": cpu_rows(kb, rounds, reparse=True),
        "peer": peer,
        "latency": latency_rows(0.0 if args.quick else args.gap, TOKEN_CHARS, runs, 1 if args.quick else 4),
    }


def main(argv: Sequence[str] | None = None) -> None:
    tables = run(argv)
    for name, rows in tables.items():
        print(f"\n## {name}\n")
        print(markdown_table(rows))
        if name == "peer":
            for note in NOTES:
                print(f"\n{note}")


if __name__ == "__main__":
    main()
