"""`extract run` end to end: a real subprocess against a TestServer on 127.0.0.1.

Includes the durability checks: SIGKILL mid-run then rerun (every id once, finished documents not sent
again) and SIGINT (exit 130, a resume hint, nothing partial written).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from extract.cli import main
from extract.testing import TestServer

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
MODEL = "llama3.1-8b"
DOC_MARK = re.compile(r"\[doc ([\w-]+)\]")


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    return path


def write_jsonl(path: Path, n: int) -> list[str]:
    ids = [f"d{i}" for i in range(n)]
    with open(path, "w") as fh:
        for doc_id in ids:
            fh.write(json.dumps({"id": doc_id, "text": f"[doc {doc_id}] Ada Lovelace is 36."}) + "\n")
    return ids


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from extract.cli import main; sys.exit(main())", *args]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("CEREBRAS_")}
    e["PYTHONUNBUFFERED"] = "1"
    return e


def sent_ids(server: TestServer) -> Counter[str]:
    counts: Counter[str] = Counter()
    for body in server.requests:
        for message in body.get("messages", []):
            if message.get("role") == "user":
                found = DOC_MARK.search(str(message.get("content")))
                if found:
                    counts[found.group(1)] += 1
                    break
    return counts


def output_lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n")
    return [json.loads(line) for line in raw.splitlines()]


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def default_sigint() -> None:
    """pytest run as a background job of a non-interactive shell has SIGINT ignored, and a child inherits
    that: give the child the default disposition, as an interactive terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def line_count(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_sigkill_mid_run_then_rerun_finishes_without_resending(tmp_path: Path, schema_file: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = write_jsonl(inp, 60)
    with TestServer(latency=0.15) as server:
        args = cli("run", str(schema_file), "--input", str(inp), "--output", str(out))
        args += ["--base-url", server.base_url, "--model", MODEL, "--concurrency", "4", "--quiet"]
        proc = subprocess.Popen(args, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: line_count(out) >= 12)
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        before = {line["id"] for line in output_lines(out)}
        assert 12 <= len(before) < len(ids)

        done = subprocess.run(args, env=env(), capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()
        lines = output_lines(out)
        assert sorted(line["id"] for line in lines) == sorted(ids)
        assert all("value" in line for line in lines)
        sent = sent_ids(server)
        assert set(sent) == set(ids)
        assert all(sent[doc_id] == 1 for doc_id in before), "a finished document was sent again"


def test_sigint_stops_cleanly_and_says_how_to_resume(tmp_path: Path, schema_file: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = write_jsonl(inp, 60)
    with TestServer(latency=0.15) as server:
        args = cli("run", str(schema_file), "--input", str(inp), "--output", str(out))
        args += ["--base-url", server.base_url, "--model", MODEL, "--concurrency", "4"]
        proc = subprocess.Popen(
            args, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint
        )
        wait_for(lambda: line_count(out) >= 8)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 130, err.decode()
        text = err.decode()
        assert "interrupted" in text and "to resume, run the same command again" in text
        assert "--output" in text.split("to resume")[1]
        before = output_lines(out)  # only complete lines
        assert 8 <= len(before) < len(ids)

        again = subprocess.run(args, env=env(), capture_output=True, timeout=120)
        assert again.returncode == 0, again.stderr.decode()
        assert "resuming" in again.stderr.decode()
        assert sorted(line["id"] for line in output_lines(out)) == sorted(ids)


def test_stdout_lines_and_exit_code_1_when_a_document_fails(
    tmp_path: Path, schema_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = []
    for name in ("a.txt", "b.txt"):
        p = tmp_path / name
        p.write_text(f"[doc {name[0]}] Grace Hopper, 85")
        docs.append(str(p))
    with TestServer() as server:
        # every reply breaks the schema: extraction fails after its attempts
        server.script(*["invalid_json"] * 2 * 3)
        code = main(
            ["run", str(schema_file), *docs, "--base-url", server.base_url, "--model", MODEL, "-c", "1", "-q"]
        )
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    lines = [json.loads(line) for line in out]
    assert sorted(line["id"] for line in lines) == sorted(docs)
    assert all(line["error"]["type"] == "ExtractionFailed" for line in lines)


def test_directory_and_csv_inputs(
    tmp_path: Path, schema_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        (folder / f"n{i}.txt").write_text(f"Ada {i}")
    (folder / "skip.md").write_text("not a .txt file")
    table = tmp_path / "t.csv"
    table.write_text('key,body\nk1,"Ada, 36"\nk2,Bob 40\n')
    with TestServer() as server:
        common = ["--base-url", server.base_url, "--model", MODEL, "-q"]
        assert main(["run", str(schema_file), "--input", str(folder), *common]) == 0
        from_dir = [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()]
        csv_args = ["--input", str(table), "--text-column", "body", "--id-column", "key"]
        assert main(["run", str(schema_file), *csv_args, *common]) == 0
        from_csv = [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()]
    assert sorted(from_dir) == ["n0.txt", "n1.txt", "n2.txt"]
    assert sorted(from_csv) == ["k1", "k2"]


def test_stdin_is_one_document(schema_file: Path) -> None:
    with TestServer() as server:
        args = cli("run", str(schema_file), "-", "--base-url", server.base_url, "--model", MODEL, "-q")
        done = subprocess.run(args, env=env(), input=b"Ada Lovelace, 36", capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    (line,) = done.stdout.decode().splitlines()
    assert json.loads(line)["id"] == "-"
    assert set(json.loads(line)["value"]) == {"name", "age"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "text": "x"}\nnot json\n', "line 2 is not valid JSON"),
        ('{"id": "a", "text": "x"}\n{"id": "b"}\n', 'line 2 has no "text" field'),
        ('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "duplicate id 'a' (first at"),
        ('{"id": "a", "text": "x"}\n[1, 2]\n', "line 2 is a JSON list"),
    ],
)
def test_bad_input_lines_stop_the_run_before_anything_is_sent(
    tmp_path: Path, schema_file: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text(content)
    with TestServer() as server:
        code = main(
            ["run", str(schema_file), "--input", str(inp), "--base-url", server.base_url, "--model", MODEL]
        )
        assert server.request_count == 0
    err = capsys.readouterr().err
    assert code == 2
    assert str(inp) in err and message in err


def test_missing_csv_column_names_the_columns(
    tmp_path: Path, schema_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    code = main(
        [
            "run",
            str(schema_file),
            "--input",
            str(table),
            "--text-column",
            "body",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--model",
            MODEL,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "no column 'body'" in err and "'a', 'b'" in err


def test_a_bad_key_stops_the_run_with_exit_code_4(
    tmp_path: Path, schema_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, 20)
    with TestServer(api_key="right-key") as server:
        monkeypatch.setenv("CEREBRAS_API_KEY", "wrong-key")
        monkeypatch.setenv("CEREBRAS_BASE_URL", server.base_url)
        code = main(
            ["run", str(schema_file), "--input", str(inp), "--output", str(out), "--model", MODEL, "-q"]
        )
    err = capsys.readouterr().err
    assert code == 4, err
    assert "wrong-key" not in err
    assert line_count(out) == 0
