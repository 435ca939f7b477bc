"""A batch over long documents: a document left incomplete (a chunk failed) says so on its output line,
and a resumed run sends it again, so the output ends with one complete line for it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from extract.batch import extract_many
from extract.testing import TestServer
from extract.testing._oracle import FIELD_PATTERN, RECORD_PATTERN, planted_document

MODEL = "llama3.1-8b"
pytestmark = pytest.mark.timeout(120)


class Rec(BaseModel):
    id: str
    name: str


class Doc(BaseModel):
    title: str | None = None
    records: list[Rec]


def _server(**settings: Any) -> TestServer:
    settings.setdefault("api_key", "sk-test")
    return TestServer(
        models=(MODEL,),
        oracle=RECORD_PATTERN,
        oracle_fields=FIELD_PATTERN,
        context_windows={MODEL: 8192},
        **settings,
    )


def _poisoned(size: int, seed: int) -> tuple[str, int]:
    text, _ = planted_document(size, seed=seed)
    cut = text.index(" ", len(text) // 2) + 1
    return text[:cut] + "POISON " + text[cut:], cut


def _ids(text: str) -> list[str]:
    return [m["id"] for m in re.finditer(RECORD_PATTERN, text)]


def _run(server: TestServer, docs: list[dict[str, str]], out: Path, **options: Any) -> list[Any]:
    return list(
        extract_many(
            Doc,
            docs,
            base_url=server.base_url,
            api_key="sk-test",
            model=MODEL,
            provider="cerebras",
            output=out,
            chunk_tokens=2000,
            overlap_tokens=50,
            **options,
        )
    )


def _lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in out.read_text().splitlines() if raw.strip()]


def test_an_incomplete_document_is_marked_and_a_resumed_batch_completes_it(tmp_path: Path) -> None:
    sick, cut = _poisoned(30_000, seed=11)
    well, _ = planted_document(30_000, seed=12)
    docs = [{"id": "sick", "text": sick}, {"id": "well", "text": well}]
    out = tmp_path / "out.jsonl"
    with _server(oracle_unavailable="POISON") as server:
        first = {o.id: o for o in _run(server, docs, out)}
    assert first["sick"].ok and not first["sick"].complete
    assert any(start <= cut < end for start, end in first["sick"].missing)
    assert first["well"].complete and first["well"].missing == ()
    lines = {line["id"]: line for line in _lines(out)}
    assert lines["sick"]["complete"] is False
    assert [tuple(r) for r in lines["sick"]["missing"]] == list(first["sick"].missing)
    assert "complete" not in lines["well"] and "missing" not in lines["well"]
    well_line = next(raw for raw in out.read_bytes().splitlines(keepends=True) if b'"well"' in raw)

    with _server() as server:  # healthy now
        second = _run(server, docs, out)
        sent = [r["messages"][-1]["content"] for r in server.requests]
    assert [o.id for o in second] == ["sick"]  # the complete one is not sent again
    assert sent and not any(well[:300] in s or well[-300:] in s for s in sent)
    (again,) = second
    assert again.complete and again.missing == ()
    assert [r.id for r in again.value.records] == _ids(sick)
    lines = _lines(out)
    assert sorted(line["id"] for line in lines) == ["sick", "well"]  # each once
    (sick_line,) = [line for line in lines if line["id"] == "sick"]
    assert "complete" not in sick_line
    assert well_line in out.read_bytes().splitlines(keepends=True)  # untouched, byte for byte


def test_without_retry_failed_an_incomplete_document_is_kept_and_skipped(tmp_path: Path) -> None:
    sick, _ = _poisoned(30_000, seed=13)
    out = tmp_path / "out.jsonl"
    docs = [{"id": "sick", "text": sick}]
    with _server(oracle_unavailable="POISON") as server:
        (first,) = _run(server, docs, out)
    assert not first.complete
    before = out.read_bytes()
    with _server() as server:
        assert _run(server, docs, out, retry_failed=False) == []
        assert server.requests == []
    assert out.read_bytes() == before


def test_cli_run_marks_an_incomplete_document_and_retries_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from extract.cli import main

    for name in ("CEREBRAS_API_KEY", "CEREBRAS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(Doc.model_json_schema()))
    sick, _ = _poisoned(30_000, seed=14)
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "sick", "text": sick}) + "\n")
    out = tmp_path / "out.jsonl"

    def run(server: TestServer) -> int:
        return main(
            [
                *("--base-url", server.base_url, "--model", MODEL, "run", str(schema)),
                *(str(source), "-o", str(out), "--chunk-tokens", "2000", "--overlap-tokens", "50"),
            ]
        )

    with _server(oracle_unavailable="POISON", api_key=None) as server:
        run(server)
    (line,) = _lines(out)
    assert line["complete"] is False and line["missing"]
    capsys.readouterr()
    with _server(api_key=None) as server:
        assert run(server) == 0
    assert "1 left incomplete earlier and retried" in capsys.readouterr().err
    (line,) = _lines(out)
    assert "complete" not in line and [r["id"] for r in line["value"]["records"]] == _ids(sick)
