"""Hostile conditions for batch runs and `extract run`: outputs that are not the run's own, two runs on one
output, an unreachable server, a bad input file, signals in every phase, a reader that goes away.

Real processes and real loopback HTTP throughout (TestServer, or raw sockets where the server must hang).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from extract._batch._guard import OutputRefused
from extract._batch._progress import Progress
from extract.batch import extract_many
from extract.cli import main
from extract.testing import TestServer

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
OTHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
MODEL = "llama3.1-8b"
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def schema_file(tmp_path: Path) -> Path:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    return path


def write_jsonl(path: Path, n: int, prefix: str = "d") -> list[str]:
    ids = [f"{prefix}{i}" for i in range(n)]
    with open(path, "w") as fh:
        for doc_id in ids:
            fh.write(json.dumps({"id": doc_id, "text": f"[doc {doc_id}] Ada Lovelace is 36."}) + "\n")
    return ids


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from extract.cli import main; sys.exit(main())", *args]


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("CEREBRAS_")}
    e["PYTHONUNBUFFERED"] = "1"
    e.update(extra)
    return e


def default_sigint() -> None:
    """A background job of a non-interactive shell inherits SIGINT ignored: give the child the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def line_ids(path: Path) -> list[Any]:
    return [json.loads(line)["id"] for line in path.read_bytes().splitlines() if line.strip()]


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---- output safety ------------------------------------------------------------------------------------


def run_args(schema_file: Path, inp: Path, out: Path, base_url: str, *more: str) -> list[str]:
    return [
        "run",
        str(schema_file),
        "--input",
        str(inp),
        "--output",
        str(out),
        "--base-url",
        base_url,
        "--model",
        MODEL,
        "-q",
        *more,
    ]


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_output_that_is_the_input_is_refused_and_the_input_kept(
    tmp_path: Path, schema_file: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, 5)
    before = inp.read_bytes()
    out = inp
    if how == "symlink":
        out = tmp_path / "link.jsonl"
        out.symlink_to(inp)
    elif how == "hardlink":
        out = tmp_path / "hard.jsonl"
        os.link(inp, out)
    with TestServer() as server:
        code = main(run_args(schema_file, inp, out, server.base_url))
        assert server.request_count == 0
    err = capsys.readouterr().err
    assert code == 2, err
    assert "is the input file" in err
    assert inp.read_bytes() == before
    assert not Path(str(out) + ".meta").exists()


def test_output_in_the_input_directory_is_refused(
    tmp_path: Path, schema_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Ada, 36")
    (folder / "b.txt").write_text("Bob, 40")
    with TestServer() as server:
        code = main(run_args(schema_file, folder, folder / "b.txt", server.base_url))
    assert code == 2
    assert (folder / "b.txt").read_text() == "Bob, 40"
    assert "is the input file" in capsys.readouterr().err


def test_a_foreign_jsonl_with_ids_is_refused_untouched(
    tmp_path: Path, schema_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, 3)
    # someone else's data, shaped like error lines: it used to be deleted as "failed earlier and retried"
    foreign = b'{"id": "d0", "error": "theirs"}\n{"id": "x", "note": "keep me"}\n'
    out.write_bytes(foreign)
    with TestServer() as server:
        code = main(run_args(schema_file, inp, out, server.base_url))
        assert server.request_count == 0
    err = capsys.readouterr().err
    assert code == 2, err
    assert "did not write" in err
    assert out.read_bytes() == foreign


def test_library_refuses_a_foreign_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    foreign = b'{"id": 0, "mine": true}\n'
    out.write_bytes(foreign)
    with TestServer() as server:
        run = extract_many(SCHEMA, ["Ada, 36"], output=out, base_url=server.base_url, model=MODEL)
        with pytest.raises(OutputRefused, match="did not write"), run:
            list(run)
        assert server.request_count == 0
    assert out.read_bytes() == foreign


def test_rerun_resumes_its_own_output_and_refuses_another_jobs(
    tmp_path: Path, schema_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = write_jsonl(inp, 4)
    other_schema = tmp_path / "other.json"
    other_schema.write_text(json.dumps(OTHER_SCHEMA))
    other_input = tmp_path / "other.jsonl"
    write_jsonl(other_input, 4)
    with TestServer() as server:
        assert main(run_args(schema_file, inp, out, server.base_url)) == 0
        written = out.read_bytes()
        meta = json.loads(Path(str(out) + ".meta").read_text())
        assert meta["format"] == "extract-output/1" and meta["schema"] and meta["input"]
        assert main(run_args(schema_file, inp, out, server.base_url)) == 0  # resumes: nothing to do
        assert server.request_count == len(ids)
        capsys.readouterr()
        assert main(run_args(other_schema, inp, out, server.base_url)) == 2
        assert "its schema differs" in capsys.readouterr().err
        assert main(run_args(schema_file, other_input, out, server.base_url)) == 2
        assert "its input differs" in capsys.readouterr().err
        assert server.request_count == len(ids)
    assert out.read_bytes() == written


def test_library_output_is_keyed_by_schema_and_input_key(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with TestServer() as server:
        common: dict[str, Any] = {"output": out, "base_url": server.base_url, "model": MODEL}
        with extract_many(SCHEMA, ["Ada, 36", "Bob, 40"], input_key="people-v1", **common) as run:
            assert all(o.ok for o in run)
        with extract_many(SCHEMA, ["Ada, 36", "Bob, 40"], input_key="people-v1", **common) as run:
            assert list(run) == []
            assert run.stats.skipped == 2
        other_input = extract_many(SCHEMA, ["x"], input_key="people-v2", **common)
        with pytest.raises(OutputRefused, match="input differs"), other_input:
            list(other_input)
        other_schema = extract_many(OTHER_SCHEMA, ["x"], input_key="people-v1", **common)
        with pytest.raises(OutputRefused, match="schema differs"), other_schema:
            list(other_schema)
    assert sorted(line_ids(out)) == [0, 1]


def test_a_stale_lock_of_a_dead_run_is_taken_over(tmp_path: Path, schema_file: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = write_jsonl(inp, 3)
    Path(str(out) + ".lock").write_text('{"pid": 999999, "host": "gone", "started": "yesterday"}\n')
    with TestServer() as server:
        assert main(run_args(schema_file, inp, out, server.base_url)) == 0
    assert sorted(line_ids(out)) == sorted(ids)
    assert not Path(str(out) + ".lock").exists()


def test_two_concurrent_runs_on_one_output_the_second_is_refused(tmp_path: Path, schema_file: Path) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    ids = write_jsonl(inp, 60)
    with TestServer(latency=0.25) as server:  # the first run lasts ~8 s: the second starts well within it
        args = cli(*run_args(schema_file, inp, out, server.base_url, "--concurrency", "2"))
        first = subprocess.Popen(args, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 2)
            second = subprocess.run(args, env=env(), capture_output=True, timeout=60)
            assert first.poll() is None, "the first run ended before the second was tried"
        finally:
            _, first_err = first.communicate(timeout=90)
        assert first.returncode == 0, first_err.decode()
    err = second.stderr.decode()
    assert second.returncode == 2, err
    assert f"pid {first.pid}" in err and "started" in err and "Wait for it to finish" in err
    assert "Traceback" not in err
    counts = Counter(line_ids(out))
    assert sorted(counts) == sorted(ids)
    assert set(counts.values()) == {1}, "an id was written twice"


# ---- an unreachable server, a bad input -------------------------------------------------------------------


def test_an_unreachable_server_stops_the_run_with_exit_4_and_writes_nothing(
    tmp_path: Path, schema_file: Path
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, 200)
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    done = subprocess.run(
        cli(*run_args(schema_file, inp, out, base_url, "--concurrency", "4")),
        env=env(),
        capture_output=True,
        timeout=90,
    )
    err = done.stderr.decode()
    assert done.returncode == 4, err
    assert "cannot reach" in err and "--base-url" in err and "base_url" not in err.replace("--base-url", "")
    assert "Traceback" not in err
    assert line_ids(out) == []  # the documents stay pending for a resume


def test_unreachable_server_without_output_prints_no_lines(tmp_path: Path, schema_file: Path) -> None:
    docs = []
    for i in range(2):
        p = tmp_path / f"{i}.txt"
        p.write_text("Ada, 36")
        docs.append(str(p))
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    done = subprocess.run(
        cli("run", str(schema_file), *docs, "--base-url", base_url, "--model", MODEL),
        env=env(),
        capture_output=True,
        timeout=90,
    )
    assert done.returncode == 4, done.stderr.decode()
    assert done.stdout == b""


def test_a_server_that_answers_keeps_connection_failures_as_outcomes() -> None:
    """A document that cannot connect amid working ones is a normal failure, not a stopped run."""
    with TestServer() as server:
        server.script("drop")
        run = extract_many(
            SCHEMA,
            ["Ada, 36", "Bob, 40", "Cy, 50"],
            base_url=server.base_url,
            model=MODEL,
            concurrency=1,
            max_retries=0,
        )
        with run:
            outcomes = list(run)
    assert len(outcomes) == 3
    assert (run.stats.done, run.stats.failed) == (2, 1)


def test_a_non_utf8_file_in_an_input_directory_stops_the_run_before_any_request(
    tmp_path: Path, schema_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(20):
        (folder / f"a{i:02}.txt").write_text("Ada, 36 " * 10_000)  # several read blocks each
    (folder / "z.txt").write_bytes(b"Ada \xff\xfe 36")
    with TestServer() as server:
        code = main(
            ["run", str(schema_file), "--input", str(folder), "--base-url", server.base_url, "--model", MODEL]
        )
        assert server.request_count == 0
    err = capsys.readouterr().err
    assert code == 2
    assert "z.txt is not UTF-8" in err


def test_a_non_utf8_csv_is_a_clear_error(
    tmp_path: Path, schema_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "t.csv"
    table.write_bytes(b"text\nAda\n\xff\xfe\n")
    code = main(
        [
            "run",
            str(schema_file),
            "--input",
            str(table),
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--model",
            MODEL,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert "is not UTF-8" in err and "Traceback" not in err


# ---- signals in every phase ----------------------------------------------------------------------------


class HangingServer:
    """Accepts connections and never answers: a request that blocks until the client gives up."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            self.accepted += 1

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    srv = HangingServer()
    yield srv
    srv.close()


def stop_and_check(proc: subprocess.Popen[bytes], signum: int, *, resume_hint: bool) -> str:
    proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=10)  # generous: a stop within a second is the target
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the run did not stop after the signal") from None
    text = err.decode()
    assert proc.returncode == 130, text
    assert "Traceback" not in text
    assert "interrupted" in text
    if resume_hint:
        assert "to resume, run the same command again" in text
    return text


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_while_importing_the_users_model(tmp_path: Path, schema_file: Path, signum: int) -> None:
    (tmp_path / "slowmodels.py").write_text(
        "import pathlib, time\n"
        "pathlib.Path('importing').write_text('1')\n"
        "time.sleep(60)\n"
        "from pydantic import BaseModel\n"
        "class Person(BaseModel):\n    name: str\n"
    )
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, 3)
    args = cli(
        "run",
        "slowmodels:Person",
        "--input",
        str(inp),
        "--output",
        str(out),
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        MODEL,
    )
    proc = subprocess.Popen(
        args,
        env=env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,
    )
    wait_for(lambda: (tmp_path / "importing").exists())
    stop_and_check(proc, signum, resume_hint=True)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_while_a_request_hangs(
    tmp_path: Path, schema_file: Path, hanging: HangingServer, signum: int
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, 10)
    args = cli(*run_args(schema_file, inp, out, hanging.base_url, "--concurrency", "2"))
    proc = subprocess.Popen(
        args, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint
    )
    wait_for(lambda: hanging.accepted >= 1)
    started = time.monotonic()
    stop_and_check(proc, signum, resume_hint=True)
    assert time.monotonic() - started < 8
    assert line_ids(out) == []


def test_signal_while_the_batch_loop_is_blocked(tmp_path: Path) -> None:
    """A validator that blocks the batch's event loop (a slow check, a C call) does not delay the stop."""
    (tmp_path / "blockmodels.py").write_text(
        "import pathlib, time\n"
        "from pydantic import BaseModel, field_validator\n"
        "class Person(BaseModel):\n"
        "    name: str\n"
        "    age: int\n"
        "    @field_validator('name')\n"
        "    @classmethod\n"
        "    def slow(cls, value: str) -> str:\n"
        "        pathlib.Path('validating').write_text('1')\n"
        "        time.sleep(60)\n"
        "        return value\n"
    )
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, 5)
    with TestServer() as server:
        args = cli("run", "blockmodels:Person", "--input", str(inp), "--output", str(out))
        args += ["--base-url", server.base_url, "--model", MODEL, "-q"]
        proc = subprocess.Popen(
            args,
            env=env(),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=default_sigint,
        )
        wait_for(lambda: (tmp_path / "validating").exists())
        started = time.monotonic()
        stop_and_check(proc, signal.SIGINT, resume_hint=True)
        assert time.monotonic() - started < 5


def test_signal_at_start_up_and_while_scanning_a_large_input(tmp_path: Path, schema_file: Path) -> None:
    """From the moment `main` starts (parsing, the heavy imports, the input scan) a stop is clean.

    A marker file says the command's module is imported and `main` is about to run; the signal follows
    after a few delays, so it lands in different phases."""
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    with open(inp, "w") as fh:
        for i in range(300_000):
            fh.write(f'{{"id": "d{i}", "text": "Ada Lovelace is 36."}}\n')
    marker = tmp_path / "started"
    code = (
        "import pathlib, sys; from extract.cli import main; "
        f"pathlib.Path({str(marker)!r}).touch(); sys.exit(main())"
    )
    args = [sys.executable, "-c", code, *run_args(schema_file, inp, out, "http://127.0.0.1:9/v1")]
    for signum, delay in (
        (signal.SIGINT, 0.0),
        (signal.SIGTERM, 0.05),
        (signal.SIGINT, 0.3),
        (signal.SIGINT, 1.0),
    ):
        marker.unlink(missing_ok=True)
        proc = subprocess.Popen(
            args, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint
        )
        wait_for(marker.exists)
        time.sleep(delay)
        if proc.poll() is not None:  # pragma: no cover - the scan finished first on a fast machine
            continue
        stop_and_check(proc, signum, resume_hint=True)
    assert not out.exists() or line_ids(out) == []


def test_signal_while_writing_to_a_full_pipe(tmp_path: Path, schema_file: Path) -> None:
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, 2000)
    with TestServer() as server:
        args = cli(
            "run",
            str(schema_file),
            "--input",
            str(inp),
            "--base-url",
            server.base_url,
            "--model",
            MODEL,
            "-q",
        )
        proc = subprocess.Popen(
            args, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint
        )
        # nobody reads stdout: the pipe fills and the command blocks in a write (no more requests go out)
        seen = [-1]

        def stalled() -> bool:
            count = server.request_count
            if count == seen[0] and count > 200:
                return True
            seen[0] = count
            time.sleep(1.0)
            return False

        wait_for(stalled, timeout=90)
        assert proc.poll() is None and server.request_count < 2000
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("the run did not stop while blocked writing") from None
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "pass --output OUT.jsonl" in err


# ---- a reader that goes away, CLI wording ------------------------------------------------------------------


def test_a_closed_pipe_ends_quietly(tmp_path: Path, schema_file: Path) -> None:
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, 300)
    with TestServer() as server:
        args = cli(
            "run",
            str(schema_file),
            "--input",
            str(inp),
            "--base-url",
            server.base_url,
            "--model",
            MODEL,
            "-q",
        )
        proc = subprocess.Popen(args, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # like `| head -1`
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.wait(timeout=60)
    assert json.loads(first)["id"].startswith("d")
    assert proc.returncode == 141, err
    assert err == "", err


# ---- progress on resume --------------------------------------------------------------------------------


def test_progress_counts_earlier_documents_against_the_total(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    texts = [f"Person {i}, {20 + i}" for i in range(6)]
    with TestServer() as server:
        common: dict[str, Any] = {"output": out, "base_url": server.base_url, "model": MODEL}
        with extract_many(SCHEMA, texts[:4], **common) as run:
            list(run)
        stream = StringIO()
        progress = Progress(total=6, stream=stream, plain=True)
        with extract_many(SCHEMA, texts, progress=progress, **common) as run:
            list(run)
    last = stream.getvalue().strip().splitlines()[-1]
    assert last.startswith("extract: 6/6 "), last
    assert "4 from an earlier run" in last


def test_a_rerun_with_nothing_left_says_so(
    tmp_path: Path, schema_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, 3)
    with TestServer() as server:
        args = run_args(schema_file, inp, out, server.base_url)
        args.remove("-q")
        assert main(args) == 0
        capsys.readouterr()
        assert main(args) == 0
    err = capsys.readouterr().err
    assert "3 of 3 already done" in err and "3/3" in err


def test_signal_while_the_embedded_model_loads_or_generates(tmp_path: Path, schema_file: Path) -> None:
    from tests._local_model import local_model_missing

    reason = local_model_missing()
    if reason is not None:
        pytest.skip(reason)
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(inp, 20)
    args = cli("run", str(schema_file), "--input", str(inp), "--output", str(out), "--concurrency", "2")
    # 0.0-0.5 s: while the model loads (llama.cpp silences stderr meanwhile); later: while it generates
    for delay in (0.0, 0.3, 0.5, 1.5):
        proc = subprocess.Popen(
            args, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint
        )
        assert proc.stderr is not None
        first = proc.stderr.readline().decode()  # the note that the embedded model is used: it loads next
        assert "embedded local model" in first, first
        time.sleep(delay)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        watchdog = threading.Timer(10, proc.kill)
        watchdog.start()
        try:
            text = proc.stderr.read().decode()  # through the reader's buffer: nothing read twice or lost
            proc.wait()
        finally:
            watchdog.cancel()
        assert time.monotonic() - started < 5, text
        assert proc.returncode == 130, text
        assert "Traceback" not in text
        assert "to resume, run the same command again" in text, (delay, text)


def test_a_run_through_a_symlink_shares_the_lock_of_the_target(tmp_path: Path) -> None:
    from extract._batch._guard import OutputLock

    target = tmp_path / "out.jsonl"
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    first = OutputLock(target)
    first.acquire()
    try:
        with pytest.raises(OutputRefused, match=f"pid {os.getpid()}"):
            OutputLock(link).acquire()
    finally:
        first.release()
    second = OutputLock(link)
    second.acquire()
    second.release()


def test_a_huge_foreign_file_without_newlines_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """The check reads blocks, not lines: a 200 MB one-line file is refused under a 150 MB address-space
    limit above the interpreter's own."""
    out = tmp_path / "out.jsonl"
    with open(out, "wb") as fh:
        fh.truncate(200 * 1024 * 1024)  # sparse: 200 MB of zero bytes, no newline
        fh.seek(0)
        fh.write(b"   ")
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from extract._batch._guard import Job, OutputRefused, check_meta\n"
        "used = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
        "resource.setrlimit(resource.RLIMIT_AS, (used + 150 * 1024 * 1024, resource.RLIM_INFINITY))\n"
        "try:\n"
        "    check_meta(Path(sys.argv[1]), Job('s', None))\n"
        "except OutputRefused:\n"
        "    sys.exit(7)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(out)], env=env(), capture_output=True, timeout=120)
    assert done.returncode == 7, done.stderr.decode()
