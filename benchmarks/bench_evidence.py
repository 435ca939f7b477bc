"""Client CPU of evidence=True against evidence=False: a 2 KB document, a 30-field result.

The loopback test server runs in its own process (it answers with values drawn from the document's words,
and with logprobs when asked), so `time.process_time()` counts only the client: with evidence=True that is
the larger reply (one logprobs entry per token, top_logprobs only for a boolean or enum), the span scan, the token map,
grounding every leaf in the text, and the confidence per leaf. Both settings ask for the full Result
(`full=True`), where the evidence is; their rounds alternate (False, True, False, ...) so a change in the
machine's load falls on both. Also reported: the reply's size, `collect()` alone on one reply, and the
garbage collector's time per call (the logprobs reply is ~1,000 lists and dicts: young collections, and
now and then a full one). Target: evidence=True costs at most 20% more client CPU per extraction.

    python benchmarks/bench_evidence.py [--quick] [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import BaseModel

from benchmarks._harness import Row, markdown_table, server_process

NAME = "evidence"
MODEL = "llama3.1-8b"
TARGET_OVERHEAD_PCT = 20.0


class LineItem(BaseModel):
    description: str
    sku: str
    quantity: int
    unit_price: float


class Party(BaseModel):
    name: str
    street: str
    city: str
    country: str
    email: str


class Invoice(BaseModel):
    number: str
    reference: str
    po_number: str
    terms: str
    vat_id: str
    iban: str
    tax: float
    shipping: float
    issued: str
    due: str
    currency: str
    seller: Party
    buyer: Party
    items: list[LineItem]  # the server writes a few items: about 30 leaves in all
    total: float
    paid: bool
    notes: str


class OpenInvoice(Invoice):
    """The same fields without the boolean: no enum or boolean, so no top_logprobs are asked for."""

    paid: str  # type: ignore[assignment]


_PARAGRAPH = (
    "Invoice INV-2024-0042 issued by Northwind Traders, 12 Harbour Street, Bristol, United Kingdom "
    "(billing@northwind.example) to Contoso Ltd, 4 Rue de la Paix, Paris, France (ap@contoso.example). "
    "Issued on March 5, 2024 and due on April 4, 2024, payable in EUR. Line items: 3 x Blue widget "
    "(SKU BW-100) at 12.50 each; 10 x Red gadget (SKU RG-220) at 4.20 each; 1 x Installation service "
    "(SKU SV-001) at 150.00. The total comes to 229.50 EUR. Payment has not been received yet. "
)
DOCUMENT = (_PARAGRAPH * 5)[:2048]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="tiny counts: proves it runs, figures are noise")
    p.add_argument("--calls", type=int, help="extractions per round (default 100, quick 3)")
    p.add_argument(
        "--rounds", type=int, help="rounds per setting; the median is reported (default 5, quick 2)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> list[Row]:
    from extract import Extractor

    args = _parser().parse_args(argv)
    calls = args.calls or (3 if args.quick else 100)
    rounds = args.rounds or (2 if args.quick else 5)
    warmup = 1 if args.quick else 10
    rows: list[Row] = []
    with server_process() as base_url:
        ex = Extractor(base_url=base_url, api_key="sk-bench", model=MODEL, provider="cerebras")
        for schema in (Invoice, OpenInvoice):
            rows.append(_measure(ex, schema, calls, rounds, warmup, 5 if args.quick else 200))
        ex.close()
    return rows


class _GcClock:
    """CPU time spent in the garbage collector while installed (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.process_time()
        else:
            self.seconds += time.process_time() - self._started


def _measure(ex: Any, schema: type[BaseModel], calls: int, rounds: int, warmup: int, repeats: int) -> Row:
    from extract.evidence import collect

    sample = ex.extract(schema, DOCUMENT, full=True, evidence=True)
    leaves = len(sample.evidence or {})
    for evidence in (False, True):
        for _ in range(warmup):
            ex.extract(schema, DOCUMENT, full=True, evidence=evidence)
    cpu: dict[bool, list[float]] = {False: [], True: []}
    in_gc: dict[bool, float] = {False: 0.0, True: 0.0}
    clock = _GcClock()
    gc.callbacks.append(clock)
    try:
        for _ in range(rounds):
            for evidence in (False, True):
                clock.seconds = 0.0
                started = time.process_time()
                for _ in range(calls):
                    ex.extract(schema, DOCUMENT, full=True, evidence=evidence)
                cpu[evidence].append((time.process_time() - started) / calls * 1e6)
                in_gc[evidence] += clock.seconds
    finally:
        gc.callbacks.remove(clock)
    base, with_evidence = statistics.median(cpu[False]), statistics.median(cpu[True])
    overhead = 100.0 * (with_evidence - base) / base
    last = sample.attempts[-1]
    started = time.process_time()
    for _ in range(repeats):
        collect(ex._compile(schema, ex.profile), DOCUMENT, last.content, sample.value, last.logprobs)
    collect_us = (time.process_time() - started) / repeats * 1e6
    alignments: dict[str, int] = {}
    for ev in (sample.evidence or {}).values():
        alignments[ev.alignment] = alignments.get(ev.alignment, 0) + 1
    plain = ex.extract(schema, DOCUMENT, full=True)
    spread = {e: (max(v) - min(v)) / statistics.median(v) * 100 for e, v in cpu.items()}
    return {
        "schema": schema.__name__
        + (" (a boolean: top_logprobs 2)" if schema is Invoice else " (no choices)"),
        "document chars": len(DOCUMENT),
        "leaves": leaves,
        "tokens in reply": len(last.logprobs or []),
        "content+logprobs KB False/True": f"{_reply_kb(plain)}/{_reply_kb(sample)}",
        "cpu µs/call evidence=False": round(base),
        "cpu µs/call evidence=True": round(with_evidence),
        "overhead %": round(overhead, 1),
        f"target ≤ {TARGET_OVERHEAD_PCT:.0f}%": "met" if overhead <= TARGET_OVERHEAD_PCT else "missed",
        "collect() µs": round(collect_us),
        "gc µs/call False/True": "/".join(
            str(round(in_gc[e] / (rounds * calls) * 1e6)) for e in (False, True)
        ),
        "alignments": ", ".join(f"{k} {v}" for k, v in sorted(alignments.items())),
        "spread % (False/True)": f"{spread[False]:.0f}/{spread[True]:.0f}",
    }


def _reply_kb(result: Any) -> str:
    """The size of the reply's content and logprobs as JSON (the envelope around them, ~0.6 KB, not counted)."""
    import orjson

    last = result.attempts[-1]
    choice: dict[str, Any] = {"message": {"content": last.content}}
    if last.logprobs:
        choice["logprobs"] = {"content": last.logprobs}
    # default=dict: the entries are read-only mappings (extract._logprobs.Token), written as their dicts
    return f"{len(orjson.dumps({'choices': [choice]}, default=dict)) / 1024:.1f}"


if __name__ == "__main__":
    print(markdown_table(main()))
