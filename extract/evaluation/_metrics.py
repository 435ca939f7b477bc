"""Scoring extractions against gold values, per leaf path. Pure (no I/O, no requests).

Matching rules:

- A leaf (string, number, boolean) is compared at its JSONPath. `exact`: equal as JSON values.
  `normalised`: equal after case folding, accent removal, whitespace collapsed and punctuation dropped,
  with numbers (and strings that read as numbers, "$1,250.00") compared as numbers, and dates written
  out ("March 5, 2024", "Tue, Mar 5 2024", "the 5th of March 2024") compared as ISO dates (a numeric
  date with two readings, 03/05/2024, is left as text). Correctness uses the
  normalised match; the exact counts are reported beside it.
- Lists are matched in order (item i against gold item i) unless the schema marks the array
  `"uniqueItems": true` (pydantic `set[...]` / `frozenset[...]`): then each predicted item is correct when
  an equal (normalised) gold item is still unmatched, as a multiset.
- Per field (the path with list indices written `[*]`, so every item of a list counts for one field):
  a correct predicted leaf is a true positive; a wrong one is a false positive and, where gold has a
  value there, a false negative too; a predicted leaf gold lacks is a false positive; a gold leaf not
  predicted is a false negative. Nulls are absent values.
- Calibration reads each predicted leaf's confidence (None confidences are left out and counted):
  expected calibration error over ten equal-width bins, and the AUROC of confidence for correct versus
  wrong leaves (the Mann-Whitney statistic, ties counted half; None without both classes).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from extract.evidence._ground import _DATES, _date_readings
from extract.evidence._paths import Path, format_path
from extract.evidence._schema import node_at

__all__ = [
    "EvalReport",
    "FieldScore",
    "Observation",
    "auroc",
    "expected_calibration_error",
    "normalise",
    "score",
]

_BINS = 10
_NUMBER = re.compile(r"[-+]?\d[\d,\u00a0\u202f ]*(?:\.\d+)?")
_CURRENCY = "$€£¥₹"
_WEEKDAY = re.compile(r"^(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?(?:the\s+)?", re.I)
_INDEX = re.compile(r"\[\d+\]")


@dataclass(frozen=True, slots=True)
class Observation:
    """One document: its gold value, what was extracted (None when extraction failed, or the grounded
    fields an UngroundedRequired kept, with `error` set), the evidence by
    JSONPath (`{path: {"confidence": ..., "alignment": ...}}` or FieldEvidence), and the cost."""

    gold: Any
    predicted: Any
    evidence: Mapping[str, Any] | None = None
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    id: str | None = None
    text: str | None = None


@dataclass(slots=True)
class FieldScore:
    """Counts and rates for one field (a leaf path, list indices as `[*]`)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    exact: int = 0  # predicted leaves equal to gold as JSON values, before normalising

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(slots=True)
class EvalReport:
    """The evaluation of a set of documents: `.to_json()` for machines, `.table()` (or str()) for people."""

    documents: int
    failed: int
    fields: dict[str, FieldScore]
    exact_match: float  # share of documents whose every leaf matched (normalised), nothing extra or missing
    strict_exact_match: float  # the same with exact leaf equality
    grounded: int  # predicted leaves whose alignment is not `none`
    with_alignment: int  # predicted leaves that had an alignment at all
    none_wrong: int  # wrong predicted leaves aligned `none` (candidate hallucinations)
    wrong: int
    ece: float | None
    auroc: float | None
    confidences: int  # predicted leaves with a confidence
    no_confidence: int  # predicted leaves whose confidence was None (no logprobs)
    requests: int
    prompt_tokens: int
    completion_tokens: int
    totals: FieldScore = field(default_factory=FieldScore)
    verbatim: int = 0  # predicted string leaves that occur verbatim in the document's text
    verbatim_exact: int = 0  # ... of which the evidence gave an exact span over that very text

    @property
    def precision(self) -> float:
        return self.totals.precision

    @property
    def recall(self) -> float:
        return self.totals.recall

    @property
    def f1(self) -> float:
        return self.totals.f1

    @property
    def grounding_rate(self) -> float | None:
        return self.grounded / self.with_alignment if self.with_alignment else None

    @property
    def none_wrong_rate(self) -> float | None:
        """The share of wrong predicted leaves that appear nowhere in the text."""
        return self.none_wrong / self.wrong if self.wrong else None

    @property
    def verbatim_exact_rate(self) -> float | None:
        """The share of predicted strings found verbatim in the text whose evidence is an exact span of
        them: grounding's own correctness, right or wrong value alike (the target is 1.0)."""
        return self.verbatim_exact / self.verbatim if self.verbatim else None

    @property
    def requests_per_document(self) -> float:
        return self.requests / self.documents if self.documents else 0.0

    @property
    def tokens_per_document(self) -> float:
        return (self.prompt_tokens + self.completion_tokens) / self.documents if self.documents else 0.0

    def to_dict(self) -> dict[str, Any]:
        def rates(s: FieldScore) -> dict[str, Any]:
            return {**asdict(s), "precision": s.precision, "recall": s.recall, "f1": s.f1}

        return {
            "documents": self.documents,
            "failed": self.failed,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "exact_match": self.exact_match,
            "strict_exact_match": self.strict_exact_match,
            "grounding_rate": self.grounding_rate,
            "none_wrong_rate": self.none_wrong_rate,
            "verbatim": self.verbatim,
            "verbatim_exact_rate": self.verbatim_exact_rate,
            "ece": self.ece,
            "auroc": self.auroc,
            "confidences": self.confidences,
            "no_confidence": self.no_confidence,
            "requests_per_document": self.requests_per_document,
            "tokens_per_document": self.tokens_per_document,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "totals": rates(self.totals),
            "fields": {name: rates(s) for name, s in self.fields.items()},
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def table(self) -> str:
        """A plain-text table: one row per field, then the overall figures."""
        width = max([len("field"), *(len(n) for n in self.fields)])
        lines = [f"{'field':<{width}}  {'P':>6}  {'R':>6}  {'F1':>6}  {'tp':>4}  {'fp':>4}  {'fn':>4}"]
        rows = [*self.fields.items(), ("(all)", self.totals)]
        for name, s in rows:
            lines.append(
                f"{name:<{width}}  {s.precision:6.3f}  {s.recall:6.3f}  {s.f1:6.3f}  {s.tp:4d}  {s.fp:4d}  {s.fn:4d}"
            )

        def show(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.3f}"

        lines += [
            "",
            f"documents {self.documents} (failed {self.failed}), exact match {self.exact_match:.3f} "
            f"(strict {self.strict_exact_match:.3f})",
            f"grounding rate {show(self.grounding_rate)}, wrong values not in the text "
            f"{show(self.none_wrong_rate)}, verbatim values with an exact span "
            f"{show(self.verbatim_exact_rate)} (of {self.verbatim})",
            f"calibration: ECE {show(self.ece)}, AUROC {show(self.auroc)} "
            f"({self.confidences} scored, {self.no_confidence} without confidence)",
            f"per document: {self.requests_per_document:.2f} requests, {self.tokens_per_document:.1f} tokens",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _fold(text: str) -> str:
    out = []
    for char in unicodedata.normalize("NFKD", text.casefold()):
        category = unicodedata.category(char)
        if category[0] == "M" or (category[0] in "PS" and not char.isalnum()):
            continue
        out.append(" " if char.isspace() else char)
    return " ".join("".join(out).split())


def _as_number(text: str) -> Decimal | None:
    stripped = text.strip().strip(_CURRENCY).strip()
    for code in ("USD", "EUR", "GBP"):
        stripped = stripped.removeprefix(code).removesuffix(code).strip()
    stripped = stripped.strip(_CURRENCY).strip()
    if not _NUMBER.fullmatch(stripped):
        return None
    try:
        return Decimal(re.sub(r"[,\u00a0\u202f ]", "", stripped))
    except InvalidOperation:
        return None


def _as_date(text: str) -> dt.date | None:
    """The one date a string writes, in any of the grounding module's date forms, else None."""
    stripped = _WEEKDAY.sub("", text.strip()).rstrip(".")
    if len(stripped) > 40:
        return None
    for pattern, order in _DATES:
        found = pattern.fullmatch(stripped)
        if found is not None:
            readings = set(_date_readings(found, order))
            return readings.pop() if len(readings) == 1 else None
    return None


def normalise(value: Any) -> Any:
    """The form two values are compared in for a `normalised` match (see the module docstring)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        number = Decimal(str(value))
        return number.normalize() if number.is_finite() else str(value)
    if isinstance(value, str):
        parsed = _as_number(value)
        if parsed is not None:
            return parsed.normalize()
        day = _as_date(value)
        return day.isoformat() if day is not None else _fold(value)
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items() if v is not None}
    return value


def _key(value: Any) -> str:
    return json.dumps(normalise(value), sort_keys=True, default=str)


def _field(path: Path) -> str:
    return _INDEX.sub("[*]", format_path(path))


def _pairs(
    schema: Mapping[str, Any], gold: Any, pred: Any, path: Path, out: list[tuple[Path, Any, Any]]
) -> None:
    """(path, gold leaf or None, predicted leaf or None) for every leaf of either value."""
    if isinstance(gold, dict) or isinstance(pred, dict):
        g = gold if isinstance(gold, dict) else {}
        p = pred if isinstance(pred, dict) else {}
        for key in [*g, *(k for k in p if k not in g)]:
            _pairs(schema, g.get(key), p.get(key), (*path, str(key)), out)
        if gold is not None and not isinstance(gold, dict):
            out.append((path, gold, None))
        if pred is not None and not isinstance(pred, dict):
            out.append((path, None, pred))
        return
    if isinstance(gold, list) or isinstance(pred, list):
        g_list = gold if isinstance(gold, list) else []
        p_list = pred if isinstance(pred, list) else []
        node = node_at(schema, path)
        if node is not None and node.get("uniqueItems") is True:
            _set_pairs(schema, g_list, p_list, path, out)
            return
        for i in range(max(len(g_list), len(p_list))):
            _pairs(
                schema,
                g_list[i] if i < len(g_list) else None,
                p_list[i] if i < len(p_list) else None,
                (*path, i),
                out,
            )
        return
    if gold is None and pred is None:
        return
    out.append((path, gold, pred))


def _set_pairs(
    schema: Mapping[str, Any], gold: list[Any], pred: list[Any], path: Path, out: list[tuple[Path, Any, Any]]
) -> None:
    """A set-like list: each predicted item is paired with an equal unmatched gold item where one exists."""
    left = Counter(_key(g) for g in gold)
    by_key: dict[str, list[Any]] = {}
    for g in gold:
        by_key.setdefault(_key(g), []).append(g)
    unmatched_pred: list[tuple[int, Any]] = []
    for i, p in enumerate(pred):
        k = _key(p)
        if left[k]:
            left[k] -= 1
            _pairs(schema, by_key[k].pop(0), p, (*path, i), out)
        else:
            unmatched_pred.append((i, p))
    rest = [g for k, items in by_key.items() for g in items[: left[k]]]
    for i, p in unmatched_pred:
        _pairs(schema, None, p, (*path, i), out)
    for j, g in enumerate(rest, start=len(pred)):
        _pairs(schema, g, None, (*path, j), out)


def expected_calibration_error(scored: Sequence[tuple[float, bool]], bins: int = _BINS) -> float | None:
    """Sum over equal-width confidence bins of |accuracy - mean confidence| weighted by the bin's share."""
    if not scored:
        return None
    totals = [[0, 0.0, 0] for _ in range(bins)]  # count, confidence sum, correct
    for confidence, correct in scored:
        index = min(int(confidence * bins), bins - 1)
        totals[index][0] += 1
        totals[index][1] += confidence
        totals[index][2] += int(correct)
    n = len(scored)
    return sum(abs(right / count - conf / count) * count / n for count, conf, right in totals if count)


def auroc(scored: Sequence[tuple[float, bool]]) -> float | None:
    """P(confidence of a random correct leaf > that of a random wrong one), ties half; None without both."""
    ranked = sorted(scored, key=lambda s: s[0])
    positives = sum(1 for _, c in ranked if c)
    negatives = len(ranked) - positives
    if not positives or not negatives:
        return None
    rank_sum = 0.0
    i = 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average_rank = (i + 1 + j) / 2  # ranks i+1..j share their mean
        rank_sum += average_rank * sum(1 for _, c in ranked[i:j] if c)
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def _get(entry: Any, name: str) -> Any:
    return entry.get(name) if isinstance(entry, Mapping) else getattr(entry, name, None)


def score(schema: Mapping[str, Any], observations: Iterable[Observation]) -> EvalReport:
    """Compare each observation's prediction with its gold value (see the module docstring)."""
    fields: dict[str, FieldScore] = {}
    totals = FieldScore()
    documents = failed = matched = strict = 0
    grounded = with_alignment = none_wrong = wrong = no_confidence = 0
    verbatim = verbatim_exact = 0
    requests = prompt_tokens = completion_tokens = 0
    scored: list[tuple[float, bool]] = []
    for obs in observations:
        documents += 1
        failed += obs.error is not None
        requests += obs.requests
        prompt_tokens += obs.prompt_tokens
        completion_tokens += obs.completion_tokens
        pairs: list[tuple[Path, Any, Any]] = []
        _pairs(schema, obs.gold, obs.predicted, (), pairs)
        all_right = obs.error is None
        all_exact = obs.error is None
        for path, gold, pred in pairs:
            counts = fields.setdefault(_field(path), FieldScore())
            right = gold is not None and pred is not None and normalise(gold) == normalise(pred)
            exact = right and gold == pred and type(gold) is type(pred)
            all_right = all_right and right
            all_exact = all_exact and exact
            for target in (counts, totals):
                if right:
                    target.tp += 1
                    target.exact += exact
                else:
                    target.fp += pred is not None
                    target.fn += gold is not None
            if pred is None:
                continue
            wrong += not right
            entry = obs.evidence.get(format_path(path)) if obs.evidence else None
            if entry is None:
                continue
            alignment = _get(entry, "alignment")
            if isinstance(pred, str) and pred and obs.text is not None and pred in obs.text:
                verbatim += 1
                spans = _get(entry, "spans") or ()
                verbatim_exact += alignment == "exact" and any(
                    obs.text[start:end] == pred for start, end in spans
                )
            if alignment is not None:
                with_alignment += 1
                grounded += alignment != "none"
                none_wrong += alignment == "none" and not right
            confidence = _get(entry, "confidence")
            if isinstance(confidence, int | float) and math.isfinite(confidence):
                scored.append((min(max(float(confidence), 0.0), 1.0), right))
            else:
                no_confidence += 1
        matched += all_right
        strict += all_exact
    return EvalReport(
        documents=documents,
        failed=failed,
        fields=dict(sorted(fields.items())),
        exact_match=matched / documents if documents else 0.0,
        strict_exact_match=strict / documents if documents else 0.0,
        grounded=grounded,
        with_alignment=with_alignment,
        none_wrong=none_wrong,
        wrong=wrong,
        ece=expected_calibration_error(scored),
        auroc=auroc(scored),
        confidences=len(scored),
        no_confidence=no_confidence,
        requests=requests,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        totals=totals,
        verbatim=verbatim,
        verbatim_exact=verbatim_exact,
    )
