"""The chunk-run generator without a server: re-splits on context refusals end, failures are isolated."""

from __future__ import annotations

from typing import Any

import pytest

from extract.documents import MAX_RESPLITS, ChunkTask, DocumentIncomplete, DocumentPlan, run_document
from extract.errors import APIError, ContextLengthError, ExtractError
from extract.results import Result, Usage

SCHEMA = {"type": "object", "properties": {"words": {"type": "array", "items": {"type": "string"}}}}


def _plan(**changes: Any) -> DocumentPlan:
    fields: dict[str, Any] = {
        "chunk_tokens": 100,
        "overlap_tokens": 0,
        "on_chunk_error": "keep",
        "user_schema": SCHEMA,
        "model": "m",
        "budget": lambda limit, current: current // 2,
        "finish": lambda value: value,
    }
    fields.update(changes)
    return DocumentPlan(**fields)


def _ok(task: ChunkTask) -> Result:
    return Result({"words": task.text.split()}, [], Usage(prompt_tokens=1), None, "json_schema", "m")


def _drive(gen: Any, answer: Any) -> tuple[Result, list[list[ChunkTask]]]:
    waves: list[list[ChunkTask]] = []
    try:
        wave = next(gen)
        while True:
            waves.append(wave)
            wave = gen.send([answer(t) for t in wave])
    except StopIteration as stop:
        return stop.value, waves


TEXT = " ".join(f"w{i}" for i in range(2000))


def test_chunks_merge_back_to_the_document() -> None:
    result, waves = _drive(run_document(TEXT, _plan()), _ok)
    assert len(waves) == 1 and result.complete
    assert result.value["words"] == TEXT.split()
    assert result.usage.prompt_tokens == len(result.chunks)


def test_refusals_for_length_resplit_a_bounded_number_of_times() -> None:
    def refuse(task: ChunkTask) -> ExtractError:
        return ContextLengthError("too long", limit=None, length=None, status_code=400)

    result, waves = _drive(run_document(TEXT, _plan()), refuse)
    assert len(waves) <= MAX_RESPLITS + 1  # never a loop
    assert not result.complete and result.missing == ((0, len(TEXT)),)
    assert result.value is None


def test_a_refused_chunk_is_split_smaller_and_then_succeeds() -> None:
    def answer(task: ChunkTask) -> Result | ExtractError:
        if task.depth == 0 and task.start == 0:
            return ContextLengthError("too long", limit=50, length=120, status_code=400)
        return _ok(task)

    seen: list[int | None] = []
    plan = _plan(chunk_tokens=400, budget=lambda limit, current: seen.append(limit) or 150)
    result, waves = _drive(run_document(TEXT, plan), answer)
    assert seen == [50] and len(waves) == 2
    assert all(t.depth == 1 for t in waves[1]) and waves[1][0].start == 0
    assert result.complete and result.value["words"] == TEXT.split()


def test_a_failed_chunk_is_kept_out_or_raised() -> None:
    def answer(task: ChunkTask) -> Result | ExtractError:
        return APIError("HTTP 503", status_code=503) if task.start > 0 and task.start < 400 else _ok(task)

    result, _ = _drive(run_document(TEXT, _plan()), answer)
    assert not result.complete and len(result.missing) == 1
    failed = [c for c in result.chunks if not c.ok]
    assert result.missing == ((failed[0].start, failed[0].end),)
    lost = set(TEXT[failed[0].start : failed[0].end].split())
    assert not lost & set(result.value["words"])
    with pytest.raises(DocumentIncomplete) as caught:
        _drive(run_document(TEXT, _plan(on_chunk_error="raise")), answer)
    assert caught.value.partial.missing == result.missing
    assert caught.value.partial.value == result.value  # the chunks after the failed one are kept too
