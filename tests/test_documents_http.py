"""Documents longer than the context window, end to end over HTTP against the oracle test server."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel

from extract.core import Extractor, Result
from extract.documents import DocumentIncomplete
from extract.errors import ConfigurationError, ExtractionFailed, InputError
from extract.testing import TestServer
from extract.testing._oracle import FIELD_PATTERN, RECORD_PATTERN, planted_document

MODEL = "llama3.1-8b"  # the cerebras record: an 8,192-token window
UNKNOWN = "doc-model"  # no window in the record: learned from the server's refusal
WINDOW = 8192

pytestmark = pytest.mark.timeout(120)


class Rec(BaseModel):
    id: str
    name: str


class Doc(BaseModel):
    title: str  # required, named in two chunks only: the other chunks must not invent it
    records: list[Rec]


def _document(size: int, seed: int = 0) -> str:
    text, _ = planted_document(size, seed=seed)
    quarter = text.index(" ", len(text) * 3 // 4) + 1
    return "FIELD title=Alpha " + text[:quarter] + "FIELD title=Beta " + text[quarter:]


def _truth(text: str) -> list[tuple[str, str, int, int]]:
    return [(m["id"], m["name"], m.start(), m.end()) for m in re.finditer(RECORD_PATTERN, text)]


def _server(**settings: Any) -> TestServer:
    settings.setdefault("context_windows", {MODEL: WINDOW, UNKNOWN: WINDOW})
    settings.setdefault("api_key", "sk-test")
    return TestServer(
        models=(MODEL, UNKNOWN),
        oracle=RECORD_PATTERN,
        oracle_fields=FIELD_PATTERN,
        **settings,
    )


def _extractor(server: TestServer, model: str = MODEL, **options: Any) -> Extractor:
    return Extractor(base_url=server.base_url, api_key="sk-test", model=model, provider="cerebras", **options)


def _statuses(server: TestServer) -> Counter[int | None]:
    return Counter(entry.status for entry in server.request_log)


def _check_found_once(result: Result, text: str) -> None:
    found = Counter((r.id, r.name) for r in result.value.records)
    truth = _truth(text)
    assert found == Counter((i, n) for i, n, _, _ in truth)
    assert [r.id for r in result.value.records] == [i for i, _, _, _ in truth]  # document order


def test_one_megabyte_document_in_an_8k_window() -> None:
    text = _document(1_000_000)
    with _server() as server:
        result = _extractor(server).extract(Doc, text, full=True)
        requests = server.requests
        statuses = _statuses(server)
    assert statuses == Counter({200: len(result.chunks)})  # nothing refused: no request exceeded the window
    assert result.complete and result.missing == ()
    _check_found_once(result, text)
    chunks = [(c.start, c.end) for c in result.chunks]
    assert chunks[0][0] == 0 and chunks[-1][1] == len(text)
    assert all(b[0] <= a[1] for a, b in itertools.pairwise(chunks))  # covered, overlapping
    truth = _truth(text)
    straddling = [r for r in truth if any(r[2] < end < r[3] for _, end in chunks)]
    in_overlap = [
        r for r in truth if any(b[0] <= r[2] and r[3] <= a[1] for a, b in itertools.pairwise(chunks))
    ]
    assert straddling and len(in_overlap) > len(chunks)
    # the scalar conflict is kept: first value wins, both named with their chunks
    assert result.value.title == "Alpha"
    (conflict,) = result.disagreements
    assert conflict.path == "$.title" and conflict.values == ("Alpha", "Beta")
    assert conflict.ranges[0][0] == 0 and conflict.ranges[1][0] > len(text) // 2
    # usage is summed over the chunks; every chunk shares one wire prefix (system prompt, schema, key)
    assert result.usage.prompt_tokens == sum(c.usage.prompt_tokens for c in result.chunks)
    assert all(c.attempts == 1 for c in result.chunks)
    prefixes = {
        (r["messages"][0]["content"], str(r["response_format"]), r.get("prompt_cache_key")) for r in requests
    }
    assert len(prefixes) == 1


def test_an_unknown_window_is_learned_from_one_refusal_and_remembered() -> None:
    text = _document(200_000, seed=1)
    with _server() as server:
        extractor = _extractor(server, UNKNOWN)
        first = extractor.extract(Doc, text, full=True)
        assert _statuses(server)[400] == 1  # the whole text, once
        second = extractor.extract(Doc, text, full=True)
        assert _statuses(server)[400] == 1  # remembered: no second refusal
    _check_found_once(first, text)
    assert first.value == second.value and len(first.chunks) > 1


def test_a_window_smaller_than_the_record_splits_again_and_never_loops() -> None:
    text = _document(150_000, seed=2)
    with _server(context_windows={MODEL: 4096}) as server:
        result = _extractor(server).extract(Doc, text, full=True)
        refused = _statuses(server)[400]
    _check_found_once(result, text)
    assert result.complete
    assert 1 <= refused <= 8  # the first wave at most (8 chunks in flight); then the learned limit holds


def test_a_chunk_that_fails_leaves_the_document_incomplete_naming_its_range() -> None:
    text = _document(120_000, seed=3)
    poison = text.index(" ", len(text) // 2) + 1
    text = text[:poison] + "POISON " + text[poison:]
    with _server(oracle_unavailable="POISON") as server:
        result = _extractor(server).extract(Doc, text, full=True)
        statuses = _statuses(server)
    assert not result.complete
    failed = [c for c in result.chunks if not c.ok]
    assert failed and all("503" in (c.error or "") for c in failed)
    assert statuses[503] == 3 * len(failed)  # the first answer and two retries, per failed chunk
    assert any(start <= poison < end for start, end in result.missing)
    found = {r.id for r in result.value.records}
    for rid, _, start, end in _truth(text):
        lost = any(s <= start and end <= e for s, e in result.missing)
        assert (rid in found) != lost
    assert result.value.title == "Alpha"


def test_on_chunk_error_raise_carries_the_partial_value() -> None:
    text = _document(120_000, seed=4)
    cut = text.index(" ", len(text) // 3) + 1
    text = text[:cut] + "POISON " + text[cut:]
    with _server(oracle_unavailable="POISON") as server, pytest.raises(DocumentIncomplete) as caught:
        _extractor(server).extract(Doc, text, on_chunk_error="raise")
    assert isinstance(caught.value, ExtractionFailed)
    partial = caught.value.partial
    assert not partial.complete and partial.missing
    assert isinstance(partial.value, dict) and partial.value["records"]


def test_chunking_off_names_the_sizes_and_sends_nothing() -> None:
    with _server() as server:
        with pytest.raises(InputError, match=r"context window of 8192 tokens.*chunking='off'"):
            _extractor(server).extract(Doc, _document(60_000), chunking="off")
        assert server.requests == []


def test_short_documents_go_whole_and_async_matches_sync() -> None:
    short = _document(2_000)
    text = _document(100_000, seed=5)
    with _server() as server:
        extractor = _extractor(server)
        result = extractor.extract(Doc, short, full=True)
        assert result.chunks == () and len(server.requests) == 1
        sync = extractor.extract(Doc, text, full=True, chunk_tokens=3000, overlap_tokens=100)
        asynchronous = asyncio.run(
            extractor.aextract(Doc, text, full=True, chunk_tokens=3000, overlap_tokens=100)
        )
    assert sync.value == asynchronous.value
    assert [(c.start, c.end) for c in sync.chunks] == [(c.start, c.end) for c in asynchronous.chunks]
    assert all(c.end - c.start <= 9000 for c in sync.chunks)  # 3,000 tokens of at most 3 characters
    _check_found_once(sync, text)


def test_extract_many_and_extract_pass_the_chunk_options_through() -> None:
    from extract import extract
    from extract.batch import extract_many

    texts = [_document(30_000, seed=6), _document(30_000, seed=7)]
    with _server() as server:
        outcomes = list(
            extract_many(
                Doc,
                texts,
                base_url=server.base_url,
                api_key="sk-test",
                model=MODEL,
                provider="cerebras",
                chunk_tokens=2000,
                overlap_tokens=50,
            )
        )
        many = len(server.requests)
        value = extract(
            Doc, texts[0], base_url=server.base_url, api_key="sk-test", model=MODEL, chunk_tokens=2000
        )
        assert len(server.requests) > many + 1
    assert many > 2 * 2  # split: several requests per document
    for outcome in outcomes:
        _check_found_once(Result(outcome.value, [], outcome.usage, None, "", MODEL), texts[outcome.index])
    assert [r.id for r in value.records] == [i for i, _, _, _ in _truth(texts[0])]


def test_cli_run_splits_long_documents(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from extract.cli import main

    for name in ("CEREBRAS_API_KEY", "CEREBRAS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(Doc.model_json_schema()))
    text = _document(60_000, seed=8)
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "long", "text": text}) + "\n")
    out = tmp_path / "out.jsonl"
    with _server(api_key=None) as server:
        code = main(
            [
                *("--base-url", server.base_url, "--model", MODEL, "run", str(schema), str(source)),
                *("-o", str(out), "--chunk-tokens", "2000", "--overlap-tokens", "100", "--quiet"),
            ]
        )
        requests = len(server.requests)
    assert code == 0 and requests > 3
    (line,) = [json.loads(raw) for raw in out.read_text().splitlines()]
    assert [r["id"] for r in line["value"]["records"]] == [i for i, _, _, _ in _truth(text)]


def test_bench_long_runs_and_finds_every_record(capsys: pytest.CaptureFixture[str]) -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import bench_long

    (row,) = bench_long.main(["--sizes", "40000", "--rounds", "1"])
    assert row["recall"] == 1.0 and row["precision"] == 1.0 and row["chunks"] > 1
    assert "| 40,00" in capsys.readouterr().out


def test_a_short_text_refused_as_too_long_is_not_split() -> None:
    from extract.errors import ContextLengthError
    from extract.testing import Fault

    body = {
        "message": "Please reduce the length of the messages or completion. Current length is 9000 while limit is 8192",
        "code": "context_length_exceeded",
    }
    with _server() as server:
        server.script(Fault.http_error(400, body))
        with pytest.raises(ContextLengthError):
            _extractor(server, UNKNOWN).extract(Doc, "FIELD title=x RECORD id=a name=b")
        assert len(server.requests) == 1


def test_evidence_on_a_chunked_document_points_into_the_whole_text() -> None:
    text = _document(60_000, seed=3)
    with _server() as server:
        result = _extractor(server).extract(Doc, text, full=True, evidence=True)
    assert len(result.chunks) > 1 and result.source == text
    truth = {(i, n): (s, e) for i, n, s, e in _truth(text)}
    for k, record in enumerate(result.value.records):
        ev = result.evidence[f"$.records[{k}].id"]
        # merged from several replies: the confidence the chunk reply it came from gave it
        # (tests/test_evidence_confidence_http.py checks the figure)
        assert ev.alignment == "exact" and ev.confidence is not None
        start, end = truth[(record.id, record.name)]
        assert any(start <= s and e <= end and text[s:e] == record.id for s, e in ev.spans)


def test_highest_confidence_merges_by_the_chunks_logprobs() -> None:
    import json

    from pydantic import Field

    from extract.evidence import collect
    from extract.schema import compile_schema

    class Scored(BaseModel):
        title: str = Field(json_schema_extra={"merge": "highest_confidence"})
        records: list[Rec]

    text = _document(60_000, seed=9)
    with _server() as server:
        scored = _extractor(server).extract(Scored, text, full=True, chunk_tokens=4000)
        asked = [r.get("logprobs") for r in server.requests]
        plain = _extractor(server).extract(Doc, text, full=True, chunk_tokens=4000)
        not_asked = [r.get("logprobs") for r in server.requests[len(asked) :]]
    assert asked and all(flag is True for flag in asked)  # only the policy asks for logprobs
    assert not any(not_asked)
    assert plain.value.title == "Alpha"  # `first`
    # the title of the reply the model was surest of, from the replies' own logprobs
    compiled = compile_schema(Scored)
    candidates = []
    for attempt in scored.attempts:
        value = json.loads(attempt.content or "{}")
        if value.get("title") is None:
            continue
        found = collect(compiled, text, attempt.content, value, attempt.logprobs)
        candidates.append((found["$.title"].confidence, value["title"]))
    assert {title for _, title in candidates} == {"Alpha", "Beta"}
    assert all(score is not None for score, _ in candidates)
    best = max(score for score, _ in candidates)
    assert scored.value.title == next(title for score, title in candidates if score == best)
    assert [d.path for d in scored.disagreements] == ["$.title"]


def test_the_embedded_provider_sends_chunks_one_at_a_time() -> None:
    # the embedded model answers one request at a time: chunks sent together would queue and time out.
    # A server that takes one request at a time (429 beyond) stands in for it; the cerebras record,
    # which sends chunks concurrently, is the control.
    class Records(BaseModel):
        records: list[Rec]

    text, planted = planted_document(40_000, seed=10)
    statuses: dict[str, Counter[int | None]] = {}
    for provider in ("local", "cerebras"):
        with TestServer(
            models=("m",),
            oracle=RECORD_PATTERN,
            latency=0.2,
            max_concurrency=1,
            context_windows={"m": 4096},
        ) as server:
            extractor = Extractor(
                base_url=server.base_url, api_key="k", model="m", provider=provider, max_retries=0
            )
            result = extractor.extract(Records, text, full=True, chunk_tokens=2000)
            if provider == "local":
                assert result.complete and len(result.chunks) > 2
                assert [r.id for r in result.value.records] == [rid for rid, _, _, _ in planted]
            statuses[provider] = _statuses(server)
    assert set(statuses["local"]) == {200}
    assert statuses["cerebras"][429] > 0


def test_stream_of_a_long_document_is_chunked_and_yields_the_merged_value() -> None:
    text = _document(100_000, seed=5)
    with _server() as server:
        ex = _extractor(server)
        whole = ex.extract(Doc, text, full=True)
        stream = ex.stream(Doc, text)
        items = list(stream)
        assert items == [whole.value]  # one item: the merged value, exactly what extract returns
        assert stream.result is not None and len(stream.result.chunks) == len(whole.chunks) > 1
        assert all(entry.status == 200 for entry in server.request_log)  # no request over the window

        async def collect() -> list[Any]:
            out = []
            async for item in ex.astream(Doc, text):
                out.append(item)
            return out

        assert asyncio.run(collect()) == [whole.value]
        with pytest.raises(ConfigurationError, match="evidence"):
            ex.stream(Doc, text, evidence=True)
