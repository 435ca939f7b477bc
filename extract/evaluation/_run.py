"""`evaluate`: run extractions over labelled examples and score them (the scoring is `_metrics`, pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from extract.errors import InputError
from extract.evaluation._metrics import EvalReport, Observation, score

__all__ = ["evaluate", "observe", "run_examples"]


def _example(example: Any, number: int) -> tuple[str | None, str, Any]:
    """(id, text, gold) from a mapping {"text", "gold" (or "expected"), "id"?} or a (text, gold) pair."""
    if isinstance(example, Mapping):
        text = example.get("text")
        gold = example["gold"] if "gold" in example else example.get("expected")
        doc_id = example.get("id")
    elif isinstance(example, tuple | list) and len(example) == 2:
        text, gold = example
        doc_id = None
    else:
        raise InputError(
            f"example {number}: expected {{'text': ..., 'gold': ...}} or a (text, gold) pair, "
            f"got {type(example).__name__}"
        )
    if not isinstance(text, str):
        raise InputError(f"example {number}: 'text' must be a string, got {type(text).__name__}")
    return (None if doc_id is None else str(doc_id)), text, gold


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json", by_alias=True) if callable(dump) else value


def observe(result: Any, gold: Any, doc_id: str | None = None, text: str | None = None) -> Observation:
    """An Observation from a `Result` (extract(..., full=True))."""
    usage = result.usage
    return Observation(
        gold=_plain(gold),
        predicted=_plain(result.value),
        evidence=result.evidence,
        requests=len(result.attempts),
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        id=doc_id,
        text=text,
    )


def evaluate(
    schema: Any,
    examples: Iterable[Any],
    *,
    extractor: Any = None,
    evidence: bool = True,
    **options: Any,
) -> EvalReport:
    """Extract every example and compare with its gold value, per leaf path (see extract.evaluation).

    `examples`: mappings {"text": ..., "gold": ..., "id"?: ...} (gold as JSON, or a pydantic instance,
    dumped by alias) or (text, gold) pairs. `options` go to `extract()` (model, base_url,
    require_grounding, temperature, ...), or to `extractor.extract` when an Extractor is given.
    `evidence=True` (the default) asks for spans and confidences, so grounding rate and calibration can
    be measured. A document whose extraction fails (ExtractionFailed) counts every gold leaf as missed
    and is counted in `failed`, except the fields of an UngroundedRequired's partial value
    (require_grounding keeps the grounded fields when a required one is not in the text): those are
    scored as predicted, the document is still failed. Configuration and connection errors are raised.
    """
    from extract.schema import compile_schema

    compiled = compile_schema(schema)
    found = run_examples(schema, examples, extractor=extractor, evidence=evidence, **options)
    return score(compiled.user_schema, found)


def run_examples(
    schema: Any,
    examples: Iterable[Any],
    *,
    extractor: Any = None,
    evidence: bool = True,
    **options: Any,
) -> list[Observation]:
    """One Observation per example (what `evaluate` scores), texts kept for a report."""
    from extract.core import extract
    from extract.errors import ExtractionFailed, UngroundedRequired

    observations: list[Observation] = []
    for number, example in enumerate(examples, 1):
        doc_id, text, gold = _example(example, number)
        try:
            if extractor is not None:
                result = extractor.extract(schema, text, full=True, evidence=evidence, **options)
            else:
                result = extract(schema, text, full=True, evidence=evidence, **options)
        except ExtractionFailed as exc:
            usage = exc.usage
            # require_grounding's failure keeps the grounded fields (UngroundedRequired.partial): the caller
            # has them, so they are scored; the document still counts as failed
            partial = exc.partial.value if isinstance(exc, UngroundedRequired) else None
            observations.append(
                Observation(
                    gold=_plain(gold),
                    predicted=partial,
                    evidence=_partial_evidence(schema, text, partial) if evidence and partial else None,
                    requests=len(exc.attempts),
                    prompt_tokens=getattr(usage, "prompt_tokens", 0),
                    completion_tokens=getattr(usage, "completion_tokens", 0),
                    error=str(exc),
                    id=doc_id,
                    text=text,
                )
            )
            continue
        observations.append(observe(result, gold, doc_id, text))
    return observations


def _partial_evidence(schema: Any, text: str, partial: Any) -> dict[str, Any]:
    """Spans and alignment (no confidence) of a failed document's partial value."""
    from extract.evidence import collect
    from extract.schema import compile_schema

    return collect(compile_schema(schema), text, None, partial, None)
