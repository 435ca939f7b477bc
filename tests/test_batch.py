"""extract_many / aextract_many: scheduling, ordering, laziness, failures and checkpoints.

Most tests drive the real scheduling loop with a fake extractor (an object with `aextract`), so they test the
loop itself quickly and deterministically; tests/test_batch_server.py runs it against the TestServer.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract import aextract_many, extract_many
from extract._batch._aimd import AdaptiveLimit
from extract._batch._checkpoint import Checkpoint
from extract.core import Attempt, Result, Usage
from extract.errors import (
    APIConnectionError,
    ConfigurationError,
    ExtractError,
    ExtractionFailed,
    ServerError,
)


class FakeExtractor:
    """Answers {"text": text} after a delay; texts starting with "fail:" fail, "boom:" raises a bug."""

    def __init__(self, delay: float | dict[str, float] = 0.0) -> None:
        self.delay = delay
        self.calls: list[str] = []
        self.active = 0
        self.peak = 0
        self.limiter = None
        self.gate: dict[str, threading.Event] = {}

    async def aextract(
        self, schema: Any, text: str, *, instructions: str | None = None, full: bool = False
    ) -> Any:
        self.calls.append(text)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            delay = self.delay.get(text, 0.0) if isinstance(self.delay, dict) else self.delay
            await asyncio.sleep(delay)
            gate = self.gate.get(text)
            while gate is not None and not gate.is_set():
                await asyncio.sleep(0.001)
            if text.startswith("fail:"):
                usage = Usage(prompt_tokens=5, completion_tokens=2, total_tokens=7)
                raise ExtractionFailed("no valid reply", attempts=[object(), object()], usage=usage)
            if text.startswith("down:"):
                raise APIConnectionError("could not reach http://127.0.0.1:9/v1 (ConnectError)")
            if text.startswith("api:"):
                raise ServerError("HTTP 503 after retries", status_code=503)
            if text.startswith("boom:"):
                raise ZeroDivisionError("a bug")
            usage = Usage(prompt_tokens=10, completion_tokens=3, total_tokens=13)
            attempt = Attempt("json_schema", "{}", None, [], usage, "stop", 0.01, 200)
            return Result({"text": text}, [attempt], usage, None, "json_schema", "fake")
        finally:
            self.active -= 1


def outcomes(docs: Any, **kwargs: Any) -> list[Any]:
    kwargs.setdefault("extractor", FakeExtractor())
    with extract_many({"type": "object"}, docs, **kwargs) as run:
        return list(run)


def test_every_document_gets_exactly_one_outcome_failures_included() -> None:
    docs = [f"doc {i}" for i in range(40)] + ["fail: a", "api: b", "boom: c"]
    got = outcomes(docs, concurrency=8)
    assert sorted(o.index for o in got) == list(range(len(docs)))
    by_text = {docs[o.index]: o for o in got}
    assert by_text["doc 7"].value == {"text": "doc 7"}
    assert by_text["doc 7"].usage.total_tokens == 13
    failed = by_text["fail: a"]
    assert isinstance(failed.error, ExtractionFailed)
    assert failed.attempts == 2 and failed.usage.total_tokens == 7
    assert isinstance(by_text["api: b"].error, ServerError)
    bug = by_text["boom: c"].error
    assert isinstance(bug, ExtractError) and "ZeroDivisionError" in str(bug)
    assert sum(o.ok for o in got) == 40


def test_ids_default_to_the_input_index_and_shapes_are_accepted() -> None:
    docs: list[Any] = ["plain", ("a", "pair"), {"id": 7, "text": "dict"}, {"text": "dict without id"}]
    got = {o.id: o for o in outcomes(docs)}
    assert set(got) == {0, "a", 7, 3}
    assert got["a"].value == {"text": "pair"}


def test_malformed_documents_become_error_outcomes_and_are_not_sent() -> None:
    fake = FakeExtractor()
    docs: list[Any] = ["ok", {"id": "x"}, {"id": 1.5, "text": "float id"}, 42, ("p", None)]
    got = sorted(outcomes(docs, extractor=fake), key=lambda o: o.index)
    assert [o.ok for o in got] == [True, False, False, False, False]
    assert "no 'text'" in str(got[1].error)
    assert "ids must be strings or integers" in str(got[2].error)
    assert "expected a string" in str(got[3].error)
    assert fake.calls == ["ok"]


def test_duplicate_ids_get_an_error_and_are_not_sent() -> None:
    fake = FakeExtractor()
    got = outcomes([("a", "first"), ("b", "other"), ("a", "second")], extractor=fake)
    dup = next(o for o in got if o.index == 2)
    assert not dup.ok and "duplicate id 'a'" in str(dup.error)
    assert sorted(fake.calls) == ["first", "other"]


def test_concurrency_is_a_ceiling() -> None:
    fake = FakeExtractor(delay=0.01)
    outcomes([f"d{i}" for i in range(60)], extractor=fake, concurrency=5)
    assert fake.peak == 5


def test_ordered_mode_yields_in_input_order_despite_random_latency() -> None:
    rng = random.Random(3)
    docs = [f"d{i}" for i in range(80)]
    fake = FakeExtractor(delay={d: rng.uniform(0, 0.02) for d in docs})
    got = outcomes(docs, extractor=fake, concurrency=16, ordered=True)
    assert [o.index for o in got] == list(range(80))


def test_ordered_mode_bounds_the_reorder_buffer() -> None:
    """A slow first document must not let the rest run (and be buffered) without limit."""
    pulled = 0

    def docs() -> Iterator[str]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield f"d{i}"

    fake = FakeExtractor()
    fake.gate["d0"] = threading.Event()
    with extract_many({}, docs(), extractor=fake, concurrency=4, ordered=True, reorder_limit=10) as run:
        it = iter(run)
        deadline = time.monotonic() + 10
        while len(fake.calls) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # give an unbounded loop the chance to run ahead
        assert len(fake.calls) == 10
        assert pulled <= 11
        fake.gate["d0"].set()
        assert [next(it).index for _ in range(30)] == list(range(30))


def test_input_is_consumed_lazily() -> None:
    """An infinite generator: only a bounded number of documents is pulled ahead of the consumer."""
    pulled = 0

    def infinite() -> Iterator[str]:
        nonlocal pulled
        for i in itertools.count():
            pulled += 1
            yield f"d{i}"

    with extract_many({}, infinite(), extractor=FakeExtractor(), concurrency=8) as run:
        taken = list(itertools.islice(run, 100))
    assert len(taken) == 100
    # in flight (8) + the bounded hand-over queue (64) + one being pulled
    assert pulled <= 100 + 8 + 64 + 1


async def test_async_iterable_input_and_async_api() -> None:
    async def docs() -> AsyncIterator[tuple[str, str]]:
        for i in range(30):
            await asyncio.sleep(0)
            yield (f"id{i}", f"text {i}")

    fake = FakeExtractor(delay=0.001)
    got = [o async for o in aextract_many({}, docs(), extractor=fake, concurrency=4)]
    assert sorted(str(o.id) for o in got) == sorted(f"id{i}" for i in range(30))
    assert fake.peak <= 4


async def test_breaking_out_of_the_async_iterator_cancels_in_flight_work() -> None:
    fake = FakeExtractor(delay={"slow": 30.0})
    run = aextract_many({}, ["fast", "slow"], extractor=fake, concurrency=2)
    async with run:
        async for outcome in run:
            assert outcome.value == {"text": "fast"}
            break
    assert fake.active == 0


def test_a_single_string_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a single str"):
        outcomes("one text")


def test_extractor_and_options_together_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        extract_many({}, [], extractor=FakeExtractor(), model="m")


def test_stats_add_up() -> None:
    docs = ["a", "b", "fail: c"]
    run = extract_many({}, docs, extractor=FakeExtractor())
    with run:
        list(run)
    assert (run.stats.done, run.stats.failed, run.stats.tokens) == (2, 1, 33)
    assert run.stats.total == 3
    assert "2 done, 1 failed" in run.stats.summary()


# --- checkpoints -------------------------------------------------------------------------------------


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_output_file_gets_one_line_per_document_and_a_rerun_skips_them(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    docs = [(f"id{i}", f"text {i}") for i in range(25)]
    first = FakeExtractor()
    assert len(outcomes(docs, extractor=first, output=out)) == 25
    lines = read_lines(out)
    assert sorted(line["id"] for line in lines) == sorted(d[0] for d in docs)
    assert lines[0]["usage"]["total_tokens"] == 13
    second = FakeExtractor()
    run = extract_many({"type": "object"}, docs, extractor=second, output=out)
    with run:
        assert list(run) == []
    assert second.calls == []
    assert run.stats.skipped == 25


def test_failed_ids_are_retried_on_rerun_unless_told_otherwise(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    outcomes([("a", "fine"), ("b", "fail: once")], output=out)
    assert {line["id"]: "error" in line for line in read_lines(out)} == {"a": False, "b": True}

    keep = FakeExtractor()
    outcomes([("a", "fine"), ("b", "fail: once")], extractor=keep, output=out, retry_failed=False)
    assert keep.calls == []

    retry = FakeExtractor()
    outcomes([("a", "fine"), ("b", "now it works")], extractor=retry, output=out)
    assert retry.calls == ["now it works"]
    lines = read_lines(out)
    assert [line["id"] for line in lines] == ["a", "b"]
    assert all("value" in line for line in lines)


def test_a_torn_last_line_is_cut_and_its_document_reruns(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    outcomes([("a", "x"), ("b", "y")], output=out)
    complete = out.read_bytes()
    with open(out, "ab") as fh:
        fh.write(b'{"id": "c", "val')  # a kill in the middle of a write
    fake = FakeExtractor()
    outcomes([("a", "x"), ("b", "y"), ("c", "z")], extractor=fake, output=out)
    assert fake.calls == ["z"]
    assert out.read_bytes().startswith(complete)
    assert sorted(line["id"] for line in read_lines(out)) == ["a", "b", "c"]


def test_a_foreign_line_stops_the_run_with_its_line_number(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    outcomes([("a", "x")], output=out)
    with open(out, "ab") as fh:
        fh.write(b"not json\n")  # an edit of the run's own output
    with pytest.raises(ConfigurationError, match=r"out.jsonl line 2"):
        outcomes([("a", "x")], output=out)


def test_an_output_without_its_record_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    foreign = b'{"id": "a", "value": {}}\n{"id": "b", "error": "not ours"}\n'
    out.write_bytes(foreign)
    fake = FakeExtractor()
    with pytest.raises(ConfigurationError, match="did not write"):
        outcomes([("a", "x"), ("b", "y")], extractor=fake, output=out)
    assert fake.calls == []
    assert out.read_bytes() == foreign


@settings(max_examples=50, deadline=None)
@given(
    ids=st.lists(st.one_of(st.integers(0, 50), st.text(max_size=5)), max_size=20, unique=True),
    tail=st.binary(max_size=30).filter(lambda b: b"\n" not in b),
    retry=st.booleans(),
)
def test_checkpoint_load_keeps_every_complete_line(
    tmp_path_factory: Any, ids: list[Any], tail: bytes, retry: bool
) -> None:
    """Whatever torn tail a kill left, loading keeps complete lines and drops only the tail."""
    path = tmp_path_factory.mktemp("ck") / "out.jsonl"
    store = Checkpoint(path)
    store.open()
    expected_done = set()
    for n, doc_id in enumerate(ids):
        if n % 3 == 2:
            store.append({"id": doc_id, "error": {"type": "X", "message": "m"}, "usage": {}})
        else:
            store.append({"id": doc_id, "value": {"n": n}, "usage": {}})
            expected_done.add(doc_id)
    store.close()
    complete = path.read_bytes()
    with open(path, "ab") as fh:
        fh.write(tail)
    state = Checkpoint(path).load(retry_failed=retry)
    assert state.done == expected_done
    assert state.torn_bytes == len(tail)
    after = path.read_bytes()
    if retry:
        assert after == b"".join(line for line in complete.splitlines(keepends=True) if b'"value"' in line)
    else:
        assert after == complete
        assert state.failed == set(ids) - expected_done


@settings(max_examples=40, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.builds(
                lambda i, v: orjson.dumps({"id": i, v: 1}),
                st.one_of(st.integers(0, 5), st.text(max_size=3)),
                st.sampled_from(["value", "error", "other"]),
            ),
        ),
        min_size=1,
        max_size=8,
    ),
    foreign_meta=st.sampled_from([None, b"{}", b"not json", b'{"format": "extract-output/1"}']),
)
def test_a_file_the_job_did_not_write_is_never_changed(
    tmp_path_factory: Any, lines: list[bytes], foreign_meta: bytes | None
) -> None:
    """Whatever an output holds that this job did not write (no .meta, or another job's), it stays byte for
    byte, and nothing is sent."""
    folder = tmp_path_factory.mktemp("foreign")
    out = folder / "out.jsonl"
    content = b"\n".join(lines) + b"\n"
    if not content.strip():
        content = b"x\n"
    out.write_bytes(content)
    if foreign_meta is not None:
        (folder / "out.jsonl.meta").write_bytes(foreign_meta)
    fake = FakeExtractor()
    with pytest.raises(ConfigurationError):
        outcomes([(0, "a"), (1, "b"), ("x", "c")], extractor=fake, output=out)
    assert fake.calls == []
    assert out.read_bytes() == content


# --- an unreachable server -----------------------------------------------------------------------------


def test_documents_that_cannot_connect_stop_the_run_and_are_not_written(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    docs = [(f"id{i}", f"down: {i}") for i in range(50)]
    fake = FakeExtractor()
    with pytest.raises(APIConnectionError, match="documents in a row failed to connect"):
        outcomes(docs, extractor=fake, output=out, concurrency=4)
    assert len(fake.calls) < 10
    assert out.read_bytes() == b""


def test_a_connection_failure_amid_answers_is_an_ordinary_failure(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    got = outcomes([("a", "down: a"), ("b", "fine"), ("c", "fine too")], output=out, concurrency=1)
    assert sorted((o.id, o.ok) for o in got) == [("a", False), ("b", True), ("c", True)]
    assert sorted(line["id"] for line in read_lines(out)) == ["a", "b", "c"]


def test_ordered_run_waiting_on_a_held_document_does_not_spin(tmp_path: Path) -> None:
    """Many documents skipped (done earlier) behind one that cannot connect: the run decides, never hangs."""
    out = tmp_path / "out.jsonl"
    done = [(f"id{i}", f"text {i}") for i in range(1, 40)]
    outcomes(done, output=out)
    with pytest.raises(APIConnectionError, match="failed to connect"):
        outcomes([("id0", "down: 0"), *done], output=out, ordered=True, reorder_limit=8)
    assert sorted(line["id"] for line in read_lines(out)) == sorted(d[0] for d in done)


# --- adaptive concurrency ------------------------------------------------------------------------------


def test_aimd_halves_once_per_burst_and_climbs_back() -> None:
    lim = AdaptiveLimit(64)
    lim.on_throttled(now=10.0)
    lim.on_throttled(now=10.1)  # same congestion event
    assert lim.limit == 32
    lim.on_throttled(now=11.0)
    assert lim.limit == 16
    for i in range(2000):
        lim.on_success(0.05, now=12.0 + i * 0.001)
    assert lim.limit == 64


def test_aimd_backs_off_when_latency_climbs() -> None:
    lim = AdaptiveLimit(100)
    now = 0.0
    for _ in range(50):
        lim.on_success(0.05, now)
        now += 0.01
    for _ in range(200):
        lim.on_success(1.0, now)
        now += 0.5
    assert lim.limit < 100


@given(
    events=st.lists(st.tuples(st.booleans(), st.floats(0.001, 5.0), st.floats(0.0, 2.0)), max_size=300),
    maximum=st.integers(1, 512),
)
def test_aimd_limit_stays_within_bounds(events: list[tuple[bool, float, float]], maximum: int) -> None:
    lim = AdaptiveLimit(maximum)
    now = 0.0
    for throttled, latency, step in events:
        now += step
        if throttled:
            lim.on_throttled(now)
        else:
            lim.on_success(latency, now)
        assert 1 <= lim.limit <= maximum
