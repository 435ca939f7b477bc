"""Integers beyond 64 bits survive the batch path: the JSONL checkpoint, its reread on resume, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from extract import extract_many
from extract.testing import Fault, TestServer

BIG = 12345678901234567890123
SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}},
    "required": ["n"],
    "additionalProperties": False,
}


def test_big_integers_are_written_and_resumed_exactly(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    docs = [{"id": "a", "text": "the number"}, {"id": "b", "text": "another"}]
    with TestServer() as server:
        server.script(Fault.content(json.dumps({"n": BIG})), Fault.content(json.dumps({"n": BIG})))
        outcomes = list(
            extract_many(
                SCHEMA, docs, base_url=server.base_url, api_key="k", model="llama3.1-8b", output=str(out)
            )
        )
        assert [o.value for o in outcomes] == [{"n": BIG}, {"n": BIG}]
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert sorted(line["value"]["n"] for line in lines) == [BIG, BIG]
        # a rerun reads the checkpoint back (exactly) and sends nothing
        before = server.request_count
        again = list(
            extract_many(
                SCHEMA, docs, base_url=server.base_url, api_key="k", model="llama3.1-8b", output=str(out)
            )
        )
        assert server.request_count == before
        assert all(o.error is None for o in again)
