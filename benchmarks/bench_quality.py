"""Extraction quality on the labelled evaluation set (benchmarks/quality/): field F1, grounding rate,
and whether confidence tells right fields from wrong ones (ECE, AUROC), with and without
require_grounding.

By default on the embedded model (SmolLM2-135M through LocalTransport: ~28 tokens/s on 2 cores, so N is
small); `--base-url URL --model NAME` runs the same set against any OpenAI-compatible server (the key,
if any, from CEREBRAS_API_KEY). Targets (issue 12): AUROC >= 0.75 on the embedded model;
require_grounding lowers the share of `none`-aligned wrong values without lowering F1.

`field F1` scores what the caller gets: the value, or for a document require_grounding failed because a
required value is not in the text (UngroundedRequired), the grounded fields its `partial` kept (the
document still counts as failed); `F1, failed docs as empty` scores every failed document as nothing found.

    python benchmarks/bench_quality.py [--n 20] [--max-tokens 160] [--grounding both|off|on]
        [--base-url URL --model NAME]

The embedded model returns logprobs from the sampled logits row of each token (extract/_local/), so ECE
and AUROC are measured there too. The same weights behind llama.cpp's own server (which needs
`--logits_all true` for them):

    python -m llama_cpp.server --model .../SmolLM2-135M-Instruct.Q4_1.gguf --model_alias smollm2-135m \
        --host 127.0.0.1 --port 18917 --n_ctx 2048 --logits_all true
    python benchmarks/bench_quality.py --base-url http://127.0.0.1:18917/v1 --model smollm2-135m \
        --provider llamacpp
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import Row, markdown_table

NAME = "quality"
TARGET_AUROC = 0.75
_COMMITTED = Path(__file__).resolve().parent.parent / "tests" / "data" / "quality_eval.jsonl"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="4 documents, one of each kind")
    parser.add_argument("--n", type=int, default=20, help="documents (kinds in turn; default 20)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=160, help="max_completion_tokens per request")
    parser.add_argument("--max-attempts", type=int, default=2)
    parser.add_argument("--base-url", help="an OpenAI-compatible server instead of the embedded model")
    parser.add_argument("--model", help="the model name at --base-url")
    parser.add_argument("--provider", help="the provider record for --base-url (default: guessed)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request (slow CPUs)")
    parser.add_argument("--json", metavar="PATH", help="also write both full reports as JSON")
    parser.add_argument(
        "--grounding",
        choices=("both", "off", "on"),
        default="both",
        help="run without require_grounding, with it, or both (default)",
    )
    return parser


def documents(n: int, seed: int) -> list[dict[str, Any]]:
    """The generated set (Faker), or the committed copy when Faker is not installed."""
    try:
        from benchmarks.quality.dataset import generate
    except ModuleNotFoundError:
        lines = _COMMITTED.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines[:n]]
    return list(generate(n, seed))


def _extractor(args: argparse.Namespace) -> Any:
    from extract import Extractor

    if args.base_url:
        return Extractor(
            base_url=args.base_url, model=args.model, provider=args.provider, timeout=args.timeout
        )
    from extract.local import LocalTransport

    transport = LocalTransport()
    transport.load()
    return Extractor(transport=transport, model=transport.model_name, provider="local", timeout=args.timeout)


def _tagged(kind: str, obs: Any) -> Any:
    """An observation with every path under its kind ($.name -> $.contact.name), so one report keeps the
    kinds' fields apart."""
    from dataclasses import replace

    evidence = {f"$.{kind}{path[1:]}": ev for path, ev in (obs.evidence or {}).items()}
    predicted = None if obs.predicted is None else {kind: obs.predicted}
    return replace(obs, gold={kind: obs.gold}, predicted=predicted, evidence=evidence)


def evaluate_set(ex: Any, docs: list[dict[str, Any]], args: argparse.Namespace, grounding: bool) -> Any:
    from benchmarks.quality.schemas import SCHEMAS
    from extract.evaluation import run_examples, score

    observations = []
    for doc in docs:
        found = run_examples(
            SCHEMAS[doc["kind"]],
            [doc],
            extractor=ex,
            evidence=True,
            require_grounding=grounding,
            temperature=0,
            max_attempts=args.max_attempts,
            max_completion_tokens=args.max_tokens,
        )
        observations.append(_tagged(doc["kind"], found[0]))
    # no lists in these schemas: the empty schema changes nothing. The second report scores a failed
    # document as nothing found, even when require_grounding kept its grounded fields (UngroundedRequired)
    from dataclasses import replace

    strict = [o if o.error is None else replace(o, predicted=None, evidence=None) for o in observations]
    return score({}, observations), score({}, strict)


def _row(label: str, report: Any, strict: Any, seconds: float) -> Row:
    def show(value: float | None) -> Any:
        return "n/a" if value is None else round(value, 3)

    kinds = sorted({name.split(".")[1] for name in report.fields})
    per_kind = []
    for kind in kinds:
        tp = sum(s.tp for n, s in report.fields.items() if n.split(".")[1] == kind)
        fp = sum(s.fp for n, s in report.fields.items() if n.split(".")[1] == kind)
        fn = sum(s.fn for n, s in report.fields.items() if n.split(".")[1] == kind)
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        per_kind.append(f"{kind} {f1:.2f}")
    return {
        "run": label,
        "docs (failed)": f"{report.documents} ({report.failed})",
        "field F1": show(report.f1),
        "F1, failed docs as empty": show(strict.f1),
        "P / R": f"{report.precision:.3f} / {report.recall:.3f}",
        "exact match": show(report.exact_match),
        "grounding rate": show(report.grounding_rate),
        "wrong values aligned none": show(report.none_wrong_rate),
        "verbatim values with exact span": f"{show(report.verbatim_exact_rate)} of {report.verbatim}",
        "ECE": show(report.ece),
        "AUROC": show(report.auroc),
        f"AUROC ≥ {TARGET_AUROC}": "n/a"
        if report.auroc is None
        else ("met" if report.auroc >= TARGET_AUROC else "missed"),
        "scored leaves": report.confidences,
        "requests/doc": round(report.requests_per_document, 2),
        "tokens/doc": round(report.tokens_per_document),
        "s/doc": round(seconds / max(report.documents, 1), 1),
        "F1 by kind": ", ".join(per_kind),
    }


def main(argv: Sequence[str] | None = None) -> list[Row]:
    args = _parser().parse_args(argv)
    n = 4 if args.quick else args.n
    docs = documents(n, args.seed)
    rows: list[Row] = []
    reports: dict[str, Any] = {}
    with _extractor(args) as ex:
        backend = args.base_url or f"embedded {ex.model}"
        settings = {"both": (False, True), "off": (False,), "on": (True,)}[args.grounding]
        for grounding in settings:
            started = time.perf_counter()
            report, strict = evaluate_set(ex, docs, args, grounding)
            label = f"{backend}, require_grounding={grounding}"
            rows.append(_row(label, report, strict, time.perf_counter() - started))
            print(markdown_table(rows[-1:]), file=sys.stderr, flush=True)  # partial output on a slow run
            reports[label] = report.to_dict()
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return rows


if __name__ == "__main__":
    print(markdown_table(main()))
