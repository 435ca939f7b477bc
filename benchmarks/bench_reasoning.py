"""Reasoning effort for extraction: tokens and success per `reasoning_effort` on a reasoning model.

Runs N invoice documents through `Extractor.extract` against the loopback test server's reasoning model
(gpt-oss-120b: it spends 64/256/1024 reasoning tokens for low/medium/high, medium when no effort is sent)
once per effort, and reports per effort: success rate, attempts and requests per document, completion
and reasoning tokens per success. Each effort runs twice: with no completion budget, and with a tight one
(`--budget`, default 512 tokens), where a reply whose reasoning uses up the budget ends in
finish_reason "length" with no content and the engine grows the budget like a truncated reply.

The default effort of the model row (`extract/providers/_data.py`) is the cheapest effort with the best
success rate measured here. The test server's answers do not get better with more reasoning, so this
measures what an effort costs, not what it buys on a real model; the choice is revisited with real runs.

    python benchmarks/bench_reasoning.py [--docs N] [--budget TOKENS] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import Row, markdown_table
from benchmarks.peers._model import Invoice, document
from extract import Extractor
from extract.errors import ExtractionFailed
from extract.testing import TestServer

NAME = "reasoning"
MODEL = "gpt-oss-120b"
EFFORTS: tuple[str | None, ...] = (None, "low", "medium", "high")
_LAST: dict[str, Any] = {}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--docs", type=int, default=None, help="documents per effort (default 40; 4 with --quick)")
    p.add_argument(
        "--budget", type=int, default=512, help="the tight max_completion_tokens of the second run"
    )
    p.add_argument("--max-attempts", type=int, default=4)
    p.add_argument("--quick", action="store_true")
    return p


def measure(base_url: str, effort: str | None, docs: int, budget: int | None, max_attempts: int) -> Row:
    """One effort (None: no reasoning_effort sent) over `docs` documents, fresh Extractor."""
    options: dict[str, Any] = {"reasoning_effort": effort}  # None: no effort sent (not the row's default)
    if budget is not None:
        options["max_completion_tokens"] = budget
    ok = attempts = requests = completion = reasoning = 0
    with Extractor(
        base_url=base_url, api_key="sk-bench", model=MODEL, provider="cerebras", max_attempts=max_attempts
    ) as ex:
        for i in range(docs):
            try:
                result = ex.extract(Invoice, document(i), full=True, **options)
            except ExtractionFailed as exc:
                attempts += len(exc.attempts)
                requests += len(exc.attempts)
                completion += exc.usage.completion_tokens
                reasoning += exc.usage.reasoning_tokens
                continue
            ok += 1
            attempts += len(result.attempts)
            requests += len(result.attempts)
            completion += result.usage.completion_tokens
            reasoning += result.usage.reasoning_tokens
    per = max(ok, 1)
    return {
        "effort": effort or "(unset: server default)",
        "budget": budget if budget is not None else "none",
        "docs": docs,
        "success %": 100.0 * ok / docs,
        "attempts/doc": attempts / docs,
        "completion tok/success": completion / per,
        "reasoning tok/success": reasoning / per,
    }


def choose(rows: Sequence[Row]) -> str:
    """The cheapest named effort among those with the best success rate over both budgets."""
    scores: dict[str, tuple[float, float]] = {}
    for row in rows:
        effort = str(row["effort"])
        if effort.startswith("("):
            continue
        success, tokens = scores.get(effort, (0.0, 0.0))
        scores[effort] = (success + float(row["success %"]), tokens + float(row["completion tok/success"]))
    return min(scores, key=lambda e: (-scores[e][0], scores[e][1]))


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = _parser().parse_args(argv)
    docs = args.docs or (4 if args.quick else 40)
    rows: list[Row] = []
    with TestServer(api_key="sk-bench", models=[MODEL]) as server:
        for budget in (None, args.budget):
            for effort in EFFORTS:
                rows.append(measure(server.base_url, effort, docs, budget, args.max_attempts))
    _LAST.update(chosen=choose(rows), docs=docs)
    return rows


def report(rows: Sequence[Row]) -> str:
    return (
        f"{markdown_table(rows)}\n\nchosen default effort for {MODEL}: {_LAST.get('chosen')} "
        "(best success, then fewest completion tokens per success, over both budgets)"
    )


if __name__ == "__main__":
    print(report(main()))
