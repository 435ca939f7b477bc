"""`extract run --stream`: one document, the value redrawn in place on a terminal, one JSON line otherwise."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from extract.cli import main
from extract.testing import TestServer

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}
MODEL = "llama3.1-8b"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    doc = tmp_path / "a.txt"
    doc.write_text("Ada Lovelace is 36; mathematician, writer.")
    return schema, doc


def test_stream_not_a_terminal_writes_one_json_line(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    schema, doc = files
    with TestServer(stream_chunk_chars=2) as server:
        code = main(
            ["run", str(schema), str(doc), "--base-url", server.base_url, "--model", MODEL, "--stream", "-q"]
        )
        assert server.requests[-1]["stream"] is True
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["id"] == str(doc)
    assert set(line["value"]) == {"name", "age", "tags"}
    assert line["usage"]["total_tokens"] > 0


def test_stream_refuses_more_than_one_document(files: tuple[Path, Path], tmp_path: Path) -> None:
    schema, doc = files
    other = tmp_path / "b.txt"
    other.write_text("Grace Hopper, 85")
    with TestServer() as server:
        code = main(
            [
                "run",
                str(schema),
                str(doc),
                str(other),
                "--base-url",
                server.base_url,
                "--model",
                MODEL,
                "--stream",
                "-q",
            ]
        )
        assert server.requests == []
    assert code == 2


def test_stream_failure_is_an_error_line(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    schema, doc = files
    with TestServer(stream_chunk_chars=2) as server:
        server.script(*["invalid_json"] * 3)
        code = main(
            ["run", str(schema), str(doc), "--base-url", server.base_url, "--model", MODEL, "--stream", "-q"]
        )
    assert code == 1
    line = json.loads(capsys.readouterr().out)
    assert line["error"]["type"] == "ExtractionFailed"


@pytest.mark.timeout(120)
def test_stream_on_a_terminal_redraws_in_place(files: tuple[Path, Path]) -> None:
    schema, doc = files
    with TestServer(stream_chunk_chars=2, stream_gap=0.002) as server:
        leader, follower = pty.openpty()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CEREBRAS_")}
        args = [
            "run",
            str(schema),
            str(doc),
            "--base-url",
            server.base_url,
            "--model",
            MODEL,
            "--stream",
            "-q",
        ]
        proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; from extract.cli import main; sys.exit(main())", *args],
            stdout=follower,
            stderr=subprocess.PIPE,
            env=env,
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        os.close(leader)
    out = b"".join(chunks).decode()
    assert out.count("\r\x1b[2K") >= 3  # partials drawn over each other, then cleared for the final line
    final = json.loads(out.rsplit("\x1b[2K", 1)[1])
    assert set(final["value"]) == {"name", "age", "tags"}
