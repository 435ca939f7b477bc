"""File sources for `extract run` and the plain progress line, without a server."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from extract._batch._outcome import BatchStats, Outcome
from extract._batch._progress import Progress
from extract._batch._sources import CsvSource, JsonlSource, SourceError, open_source


def test_jsonl_ids_default_to_the_document_position_skipping_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a"}\n\n{"id": "x", "text": "b"}\n{"text": "c"}\n')
    src = JsonlSource(path)
    assert src.scan() == 3
    assert list(src) == [(0, "a"), ("x", "b"), (2, "c")]


@given(st.lists(st.tuples(st.text(max_size=8), st.text(max_size=20)), max_size=15, unique_by=lambda t: t[0]))
def test_jsonl_round_trips_any_ids_and_texts(rows: list[tuple[str, str]]) -> None:
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.jsonl"
        path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in rows))
        src = JsonlSource(path)
        assert src.scan() == len(rows)
        assert list(src) == rows


def test_csv_reads_named_columns_with_quoted_newlines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('id,body\n1,"line one\nline two"\n2,plain\n')
    src = CsvSource(path, "body", "id")
    assert src.scan() == 2
    assert list(src) == [("1", "line one\nline two"), ("2", "plain")]


def test_csv_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("id,text\na,x\nb,y\na,z\n")
    with pytest.raises(SourceError, match=r"line 4: duplicate id 'a' \(first at .*line 2\)"):
        CsvSource(path, "text", "id").scan()


@pytest.mark.parametrize(
    ("files", "input_path", "message"),
    [
        ([], None, "nothing to read"),
        (["a.txt"], "in.jsonl", "either FILES or --input"),
        ([], "missing.jsonl", "no such input"),
    ],
)
def test_open_source_explains_bad_combinations(
    tmp_path: Path, files: list[str], input_path: str | None, message: str
) -> None:
    with pytest.raises(SourceError, match=message):
        open_source(files, str(tmp_path / input_path) if input_path else None, None, None)


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"no \.txt files"):
        open_source([], str(tmp_path), None, None).scan()


def test_plain_progress_line_reports_counts_rate_and_eta() -> None:
    stream = io.StringIO()
    progress = Progress(total=10, stream=stream, plain=True, every=0.0)
    stats = BatchStats(total=10, done=3, failed=1, tokens=1234, throttled=2)
    progress.update(Outcome(id=1, index=1), stats)
    line = stream.getvalue()
    assert "4/10 (1 failed)" in line and "1,234 tokens" in line and "2 429s" in line and "ETA" in line
