"""Output safety: one writer per output, an output knows which job it belongs to, and an output is never
the input.

- The lock is `fcntl.flock` on a sidecar `OUT.lock` holding the writer's pid, host and start time. A second
  run on the same output is refused at once, naming the first. The kernel drops a flock when its process
  dies, so a dead run's lock is taken over without any staleness guess.
- The sidecar `OUT.meta` (JSON) records the job: a fingerprint of the user schema and one of the input. The
  input fingerprint is whatever the caller passes as `input_key` (`extract run` passes the input's location:
  kind, absolute paths and columns, not its content, so fixing a line or appending documents still
  resumes). A rerun resumes only an output whose meta matches; an output with lines but without meta, or
  with another job's meta, is refused before anything is touched. Its lines are never deleted.
- An output that is one of the input files (same st_dev/st_ino, so symlinks and hard links count) is refused.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from extract.errors import ConfigurationError

__all__ = [
    "META_FORMAT",
    "OutputLock",
    "OutputRefused",
    "check_meta",
    "check_not_input",
    "lock_path",
    "meta_path",
    "schema_fingerprint",
    "write_meta",
]

META_FORMAT = "extract-output/1"


class OutputRefused(ConfigurationError):
    """The output file cannot be used by this run (in use, another job's, or the input itself)."""


def lock_path(output: Path) -> Path:
    """Next to the real file: a run through a symlink and one through the target share one lock."""
    real = output.resolve()
    return real.with_name(real.name + ".lock")


def meta_path(output: Path) -> Path:
    real = output.resolve()
    return real.with_name(real.name + ".meta")


def schema_fingerprint(schema: Any) -> str:
    """sha256 of the user schema as canonical JSON (sorted keys): equal schemas, equal fingerprints."""
    from extract.schema import compile_schema

    user_schema = compile_schema(schema).user_schema
    return hashlib.sha256(orjson.dumps(user_schema, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_not_input(output: Path, inputs: Iterable[Path]) -> None:
    """Refuse an output that is one of the inputs (by device and inode, so links count too)."""
    try:
        out_stat = output.stat()
    except FileNotFoundError:
        return
    for path in inputs:
        try:
            if _same_file(out_stat, path.stat()):
                raise OutputRefused(
                    f"the output {output} is the input file {path}: writing there would destroy the input. "
                    "Pass another --output"
                )
        except FileNotFoundError:
            continue


@dataclass(frozen=True, slots=True)
class Job:
    """What an output belongs to."""

    schema: str
    input: str | None

    def to_json(self) -> dict[str, Any]:
        return {"format": META_FORMAT, "schema": self.schema, "input": self.input}


def _has_lines(output: Path) -> bool:
    """Anything but whitespace in the file? Read in blocks: a foreign file may be one huge line."""
    try:
        with open(output, "rb") as fh:
            while block := fh.read(1 << 16):
                if block.strip():
                    return True
    except FileNotFoundError:
        pass
    return False


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def check_meta(output: Path, job: Job) -> bool:
    """Raise OutputRefused unless `output` is empty/absent or belongs to `job`; True when it can resume.

    Read-only: callable before the lock for an early answer, and again under the lock for the real one.
    """
    if not _has_lines(output):
        return False
    meta = _read_meta(meta_path(output))
    if meta is None:
        raise OutputRefused(
            f"{output} already holds lines that this job did not write (there is no {meta_path(output).name} "
            "next to it, which every output written by extract has). Nothing was changed; pass another "
            "output file, or move that one away"
        )
    if meta.get("format") != META_FORMAT:
        raise OutputRefused(
            f"{meta_path(output)} is not an extract output record; nothing was changed. Pass another output "
            "file, or move the output and its .meta away"
        )
    differs = [
        what for what, mine in (("schema", job.schema), ("input", job.input)) if meta.get(what) != mine
    ]
    if differs:
        verb = "differs" if len(differs) == 1 else "differ"
        raise OutputRefused(
            f"{output} belongs to another job (its {' and '.join(differs)} {verb} from this run's); a rerun "
            "resumes only its own output. Nothing was changed: pass another output file, or move that one "
            "(and its .meta) away to start afresh"
        )
    return True


def write_meta(output: Path, job: Job) -> None:
    """Record the job next to the output, atomically (temp file, fsync, rename)."""
    path = meta_path(output)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(orjson.dumps(job.to_json(), option=orjson.OPT_APPEND_NEWLINE))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _describe_holder(path: Path) -> str:
    try:
        info = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return "another run"
    if not isinstance(info, dict):
        return "another run"
    return (
        f"another run (pid {info.get('pid', '?')} on {info.get('host', '?')}, started "
        f"{info.get('started', '?')})"
    )


class OutputLock:
    """An exclusive, non-blocking flock on `OUT.lock`, held for the whole run."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.path = lock_path(output)
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise OutputRefused(
                    f"{self.output} is being written by {_describe_holder(self.path)}; two runs on one output "
                    "would duplicate or lose results. Wait for it to finish (or stop it), then rerun; or pass "
                    "another output file"
                ) from None
            # the holder before us may have removed the file between our open and our flock: then this lock
            # guards nothing, so start again on the file now at that path
            try:
                if _same_file(os.fstat(fd), self.path.stat()):
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.write(fd, orjson.dumps(info, option=orjson.OPT_APPEND_NEWLINE))
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        finally:
            os.close(fd)  # closing drops the flock
