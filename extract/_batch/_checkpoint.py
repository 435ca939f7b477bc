"""The JSONL output doubles as the checkpoint: one complete line per finished document, appended as it
finishes, so rerunning the same job skips what is already there.

Durability rules: each line goes out in one write() of the complete line on an O_APPEND descriptor, so a
kill can lose in-flight documents but never leaves half a line behind except as the file's last bytes; on
start a torn last line is cut off (only the bytes after the last newline), and complete lines are never
touched. fsync runs every few seconds and at the end.

Safety rules (see `_guard`): the run holds an exclusive lock on the output for its whole life, the output
must belong to this job (its `.meta`) before anything is read for resuming, and the one rewrite (dropping
the error lines and the incomplete-document lines, so those ids rerun) happens only under that lock,
atomically, and keeps every other line byte for byte.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from extract import _json
from extract._batch._guard import Job, OutputLock, check_meta, fsync_dir, write_meta
from extract._batch._outcome import DocId
from extract.errors import ConfigurationError

__all__ = ["Checkpoint", "Resumed"]

_FSYNC_EVERY_S = 2.0


@dataclass(slots=True)
class Resumed:
    """What an existing output file already holds."""

    done: set[DocId] = field(default_factory=set)
    failed: set[DocId] = field(default_factory=set)
    incomplete: set[DocId] = field(default_factory=set)  # a chunk missing; kept only without retry_failed
    lines: int = 0
    torn_bytes: int = 0
    dropped_failures: int = 0
    dropped_incomplete: int = 0


_OK, _FAILED, _INCOMPLETE = "ok", "failed", "incomplete"


def _line_status(raw: bytes, path: Path, number: int) -> tuple[DocId, str]:
    try:
        obj: Any = _json.loads(raw)
    except json.JSONDecodeError as exc:  # orjson's and the exact loader's errors alike
        obj = exc
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("id"), (str, int))
        or isinstance(obj.get("id"), bool)
    ):
        raise ConfigurationError(
            f"{path} line {number} is not an output line ({raw[:80]!r}): this file was not written by "
            "`extract run`, or was edited. Pass a different --output, or fix or delete that line and rerun"
        )
    if "value" not in obj:
        return obj["id"], _FAILED
    return obj["id"], _INCOMPLETE if obj.get("complete", True) is False else _OK


class Checkpoint:
    """Append-only JSONL results, resumable. Not thread-safe: one writer (the batch's event loop)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        job: Job | None = None,
        fsync_every: float = _FSYNC_EVERY_S,
    ) -> None:
        self.path = Path(path)
        self.job = job
        self._lock = OutputLock(self.path)
        self._fd: int | None = None
        self._fsync_every = fsync_every
        self._last_sync = time.monotonic()
        self._dirty = False
        self.written = 0

    def __repr__(self) -> str:
        return f"Checkpoint({str(self.path)!r}, written={self.written})"

    def acquire(self) -> None:
        """Take the output: lock it, check it belongs to this job (else OutputRefused, nothing touched),
        and record the job next to a new output."""
        self._lock.acquire()
        try:
            if self.job is not None and not check_meta(self.path, self.job):
                write_meta(self.path, self.job)
        except BaseException:
            self._lock.release()
            raise

    def load(self, *, retry_failed: bool = True) -> Resumed:
        """Read what earlier runs finished; with retry_failed, their error lines and the lines of documents
        left incomplete (a chunk failed) are removed so those ids rerun.

        Call it after `acquire`. Removing lines rewrites the file to a temporary one and renames it over the
        original, so a kill during the rewrite leaves either the old or the new file, never a mix.
        """
        state = Resumed()
        if not self.path.exists():
            return state
        failed_lines: set[DocId] = set()
        incomplete_lines: set[DocId] = set()
        with open(self.path, "r+b") as fh:
            offset = 0
            for number, raw in enumerate(fh, start=1):
                if not raw.endswith(b"\n"):
                    # the last write of a killed run: incomplete by construction, its document reruns
                    state.torn_bytes = len(raw)
                    fh.truncate(offset)
                    os.fsync(fh.fileno())
                    break
                offset += len(raw)
                if not raw.strip():
                    continue
                doc_id, status = _line_status(raw, self.path, number)
                state.lines += 1
                if status == _OK:
                    state.done.add(doc_id)
                elif status == _FAILED:
                    failed_lines.add(doc_id)
                else:
                    incomplete_lines.add(doc_id)
        incomplete_lines -= state.done
        failed_lines -= state.done | incomplete_lines  # a value, even a partial one, is the better record
        if not retry_failed:
            state.failed = failed_lines
            state.incomplete = incomplete_lines
        elif failed_lines or incomplete_lines:
            state.dropped_failures = len(failed_lines)
            state.dropped_incomplete = len(incomplete_lines)
            self._drop_lines(failed_lines | incomplete_lines)
        return state

    def _drop_lines(self, rerun: set[DocId]) -> None:
        """Rewrite the output without the failed or incomplete lines of the `rerun` ids; every other line
        (this run's or not, blank or not) is copied unchanged."""
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.rewrite")
        with open(self.path, "rb") as src, open(tmp, "wb") as dst:
            for number, raw in enumerate(src, start=1):
                if raw.strip():
                    doc_id, status = _line_status(raw, self.path, number)
                    if status != _OK and doc_id in rerun:
                        continue
                dst.write(raw)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)

    def open(self) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def append(self, line: dict[str, Any]) -> None:
        """Write one complete line with a single write() call (a short write is finished, never split)."""
        if self._fd is None:
            self.open()
        fd = self._fd
        if fd is None:  # pragma: no cover - open() always sets it
            raise RuntimeError("checkpoint is not open")
        payload = _json.dumps(line, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)
        view = memoryview(payload)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        self.written += 1
        self._dirty = True
        now = time.monotonic()
        if now - self._last_sync >= self._fsync_every:
            os.fsync(fd)
            self._last_sync = now
            self._dirty = False

    def close(self) -> None:
        """Flush, close and release the lock (also when the file was never opened)."""
        fd, self._fd = self._fd, None
        try:
            if fd is not None:
                try:
                    if self._dirty:
                        os.fsync(fd)
                finally:
                    os.close(fd)
        finally:
            self._lock.release()
