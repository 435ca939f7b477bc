"""The public result types: addable Usage, per-attempt logprobs and timing, and Result.time_info summed."""

from __future__ import annotations

import pydantic

import extract
from extract.core import Extractor
from extract.results import TIME_KEYS, Attempt, Result, Usage, sum_time_info
from extract.testing import Fault, TestServer


class Person(pydantic.BaseModel):
    name: str
    age: int


def test_result_types_are_public_and_the_same_everywhere() -> None:
    from extract._engine import results as old

    assert extract.Result is Result and extract.Attempt is Attempt and extract.Usage is Usage
    assert old.Usage is Usage  # modules not yet moved keep working


def test_usage_adds_every_count() -> None:
    a = Usage(1, 2, 3, 4, 5, 6, 7)
    assert a + a == Usage(2, 4, 6, 8, 10, 12, 14)
    wire = {
        "prompt_tokens": 9,
        "completion_tokens": 4,
        "prompt_tokens_details": {"cached_tokens": 8},
        "completion_tokens_details": {"accepted_prediction_tokens": 3, "rejected_prediction_tokens": 1},
    }
    got = Usage.from_wire(wire)
    assert (got.cached_tokens, got.accepted_prediction_tokens, got.rejected_prediction_tokens) == (8, 3, 1)
    assert got.total_tokens == 13


def test_time_info_sums_the_durations() -> None:
    parts = [
        {"queue_time": 0.5, "total_time": 1.0, "created": 1e9},
        None,
        {"total_time": 2, "prompt_time": True},
    ]
    total = sum_time_info(parts)
    assert total is not None and set(total) == set(TIME_KEYS)
    assert (total["queue_time"], total["total_time"], total["prompt_time"]) == (0.5, 3.0, 0.0)
    assert sum_time_info([None, None]) is None


def test_result_time_info_covers_every_attempt() -> None:
    with TestServer() as srv:
        srv.script(Fault.invalid_json())
        with Extractor(base_url=srv.base_url, model="llama3.1-8b") as ex:
            result = ex.extract(Person, "Ada Lovelace was 36 years old.", full=True)
    assert len(result.attempts) == 2
    per_attempt = [a.time_info for a in result.attempts]
    assert all(t is not None and "total_time" in t for t in per_attempt)
    assert result.time_info is not None
    expected = sum(t["total_time"] for t in per_attempt if t is not None)
    assert abs(result.time_info["total_time"] - expected) < 1e-9
    assert all(a.logprobs is None for a in result.attempts)  # not asked for
