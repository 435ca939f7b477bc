"""`extract_dataset(..., output=DIR)`: every finished document is on disk before anyone can re-send it.

Layout of DIR (a directory every worker can reach: local disk for one machine, a shared filesystem on a
cluster):

    DIR/.extract-meta            {"format", "schema"}: the job this output belongs to (another schema is refused)
    DIR/part-<token>.jsonl       one file per worker lifetime, one line per finished document:
                                 {"id", "value", "usage", "text_sha256"} (the line `extract run` writes,
                                 plus a digest of the text)

Why this shape: a worker appends each document's line as soon as the document finishes, with one write()
of the complete line on an O_APPEND descriptor, so a killed worker loses only what was still in flight and
at worst leaves a torn last line, which readers ignore (only lines ending in a newline count). Each batch
fsyncs its part before it returns, so a batch Ray has seen finish is durable even across a machine crash.
Every worker lifetime has its own part file, so writers never share a file and need no lock.

Before sending a batch, a worker reads what was appended to DIR since it last looked (new files and new
complete lines, nothing read twice) and answers the ids found there from disk instead of sending them. So a
Ray task retry (the batch re-run after its worker died, on another worker or a restarted one) and a rerun
of the whole job after a failure skip every document already written, and the returned dataset still has
each id exactly once. Only documents with a complete value are written: failed documents (and long ones
left incomplete) are sent again on the next run, as `extract_many` retries them.

Ids must be unique str or int values (numpy integers count as int). An id found in DIR with another text's
digest (a duplicate id, or an input edited since) is a row with an error and is not sent, and so is a second
row with the same id in one batch; two rows with one id in batches running at the same time on two workers
cannot be told apart, so both are sent. Reading DIR back afterwards:
`ray.data.read_json(DIR)` (the dot-file is skipped).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from extract import _json
from extract._batch._guard import fsync_dir
from extract.errors import ConfigurationError

__all__ = [
    "META_NAME",
    "PART_PREFIX",
    "TEXT_DIGEST",
    "ResultStore",
    "normalise_id",
    "prepare_output",
    "text_digest",
]

META_NAME = ".extract-meta"
PART_PREFIX = "part-"
_FORMAT = "extract-ray-output/1"

DocId = str | int
TEXT_DIGEST = "text_sha256"


def text_digest(text: str) -> str:
    """What a line remembers of its text: a second document under the same id is told apart from a retry."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def prepare_output(path: str | os.PathLike[str], fingerprint: str) -> Path:
    """Create DIR and its meta, or check that an existing DIR belongs to this schema (driver side, no I/O
    but the directory's)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ConfigurationError(
            f"output={str(folder)!r} is a file; extract_dataset writes a directory of part files there. "
            "Pass a directory path (it is created if missing)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / META_NAME
    wanted = {"format": _FORMAT, "schema": fingerprint}
    if meta.exists():
        try:
            found = orjson.loads(meta.read_bytes())
        except orjson.JSONDecodeError:
            found = None
        if found != wanted:
            raise ConfigurationError(
                f"{folder} holds the output of another job (its {META_NAME} names another schema or format); "
                "nothing was changed. Pass another output directory, or move that one away"
            )
        return folder
    if any(p.name.startswith(PART_PREFIX) for p in folder.iterdir()):
        raise ConfigurationError(
            f"{folder} already holds part files but no {META_NAME}: it was not written by extract_dataset "
            "for this job. Nothing was changed; pass another output directory"
        )
    tmp = folder / f".{META_NAME}.{os.getpid()}.tmp"
    tmp.write_bytes(orjson.dumps(wanted))
    os.replace(tmp, meta)
    fsync_dir(folder)
    return folder


def normalise_id(value: Any) -> DocId | None:
    """The id as str or int (numpy integers included); None for anything that cannot key a line."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (str, int)):
        return value
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        plain = item()
        if isinstance(plain, (str, int)) and not isinstance(plain, bool):
            return plain
    return None


@dataclass(slots=True)
class _Seen:
    offset: int = 0  # bytes of complete lines already read


@dataclass(frozen=True, slots=True)
class _Where:
    file: Path
    offset: int
    length: int


class ResultStore:
    """One worker's view of DIR: an index of the ids written there (by anyone) and its own part file."""

    def __init__(self, folder: str | os.PathLike[str], token: str) -> None:
        self.folder = Path(folder)
        self.part = self.folder / f"{PART_PREFIX}{token}.jsonl"
        self._files: dict[Path, _Seen] = {}
        self._index: dict[DocId, _Where] = {}
        self._fd: int | None = None
        self._dirty = False

    def __repr__(self) -> str:
        return f"ResultStore({str(self.folder)!r}, known={len(self._index)})"

    def refresh(self) -> None:
        """Index the complete lines appended to any part file since the last refresh."""
        for file in sorted(self.folder.glob(f"{PART_PREFIX}*.jsonl")):
            seen = self._files.setdefault(file, _Seen())
            self._read_from(file, seen)

    def _read_from(self, file: Path, seen: _Seen) -> None:
        try:
            with open(file, "rb") as fh:
                fh.seek(seen.offset)
                offset = seen.offset
                for raw in fh:
                    if not raw.endswith(b"\n"):
                        break  # torn or still being written: read again next time
                    doc_id = _line_id(raw)
                    if doc_id is not None and doc_id not in self._index:
                        self._index[doc_id] = _Where(file, offset, len(raw))
                    offset += len(raw)
                seen.offset = offset
        except FileNotFoundError:
            return

    def __contains__(self, doc_id: DocId) -> bool:
        return doc_id in self._index

    def stored(self, ids: Iterable[DocId]) -> dict[DocId, dict[str, Any]]:
        """The lines of those ids that are in DIR, read back from their part files."""
        found: dict[DocId, dict[str, Any]] = {}
        for doc_id in ids:
            where = self._index.get(doc_id)
            if where is None:
                continue
            with open(where.file, "rb") as fh:
                fh.seek(where.offset)
                line = _json.loads(fh.read(where.length))
            if isinstance(line, dict):
                found[doc_id] = line
        return found

    def append(self, line: dict[str, Any]) -> None:
        """One complete line in one write() (a short write is finished, never interleaved: the file is ours)."""
        if self._fd is None:
            self._fd = os.open(self.part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            fsync_dir(self.folder)
        payload = _json.dumps(line, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)
        view = memoryview(payload)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._dirty = True

    def sync(self) -> None:
        """Make every appended line durable (called before a batch returns)."""
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                if self._dirty:
                    os.fsync(fd)
            finally:
                os.close(fd)


def _line_id(raw: bytes) -> DocId | None:
    try:
        line = _json.loads(raw)
    except ValueError:
        return None
    if not isinstance(line, dict) or "value" not in line:
        return None
    return normalise_id(line.get("id"))
