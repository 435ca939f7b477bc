"""Measuring extraction quality against labelled examples: per-field precision, recall and F1, exact
match, grounding rate, confidence calibration (ECE, AUROC), and cost per document.

    report = extract.evaluate(Invoice, [{"text": text, "gold": {...}}, ...], model="llama3.1-8b")
    print(report.table()); report.to_json()

The matching rules are in `extract.evaluation._metrics`; `score` compares ready-made observations
without any request.
"""

from __future__ import annotations

from extract.evaluation._metrics import (
    EvalReport,
    FieldScore,
    Observation,
    auroc,
    expected_calibration_error,
    normalise,
    score,
)
from extract.evaluation._run import evaluate, observe, run_examples

__all__ = [
    "EvalReport",
    "FieldScore",
    "Observation",
    "auroc",
    "evaluate",
    "expected_calibration_error",
    "normalise",
    "observe",
    "run_examples",
    "score",
]
