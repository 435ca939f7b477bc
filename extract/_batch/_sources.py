"""Documents from files, for `extract run`: JSONL lines, CSV rows, a directory of .txt files, text files, stdin.

Each source is checked in a first streaming pass (`scan`) before anything is sent: a bad line stops the
run with its file and line number rather than costing tokens on half the input. The second pass (`iter`)
streams the documents; neither pass holds the documents in memory (the set of ids is kept, to refuse
duplicates).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from extract._batch._outcome import DocId
from extract.errors import InputError

__all__ = ["CsvSource", "DirSource", "JsonlSource", "SourceError", "TextFiles", "check_utf8", "open_source"]


class SourceError(InputError):
    """The input cannot be used as it is; the message names the file and line and says what to fix."""


def _check_id(value: Any, where: str) -> DocId:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SourceError(f"{where}: the id {value!r} is not a string or an integer")
    return value


class _Ids:
    def __init__(self) -> None:
        self._seen: dict[DocId, str] = {}

    def add(self, doc_id: DocId, where: str) -> None:
        first = self._seen.get(doc_id)
        if first is not None:
            raise SourceError(
                f"{where}: duplicate id {doc_id!r} (first at {first}); ids must be unique because they key "
                "the output file"
            )
        self._seen[doc_id] = where


def _key(*parts: object) -> str:
    """An input's identity for the output's .meta: where it is, not what it holds (see `_guard`)."""
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _where(path: Path) -> str:
    return str(path.resolve())


class _RowSource:
    """A file of rows: `scan` checks every row (and id uniqueness) before any request; iteration streams."""

    path: Path

    def _rows(self) -> Iterator[tuple[str, DocId, str]]:
        raise NotImplementedError

    def paths(self) -> list[Path]:
        """The files read (an output must not be one of them)."""
        return [self.path]

    def scan(self) -> int:
        ids = _Ids()
        count = 0
        for where, doc_id, _ in self._rows():
            ids.add(doc_id, where)
            count += 1
        return count

    def __iter__(self) -> Iterator[tuple[DocId, str]]:
        for _, doc_id, text in self._rows():
            yield doc_id, text


@dataclass
class JsonlSource(_RowSource):
    """One {"id": ..., "text": ...} object per line; "id" defaults to the document's position (0-based)."""

    path: Path

    def input_key(self) -> str:
        return _key("jsonl", _where(self.path))

    def _rows(self) -> Iterator[tuple[str, DocId, str]]:
        index = 0
        with open(self.path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                where = f"{self.path} line {number}"
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise SourceError(
                        f'{where} is not valid JSON ({exc}); expected {{"id": ..., "text": ...}}'
                    ) from None
                if not isinstance(obj, dict):
                    raise SourceError(
                        f'{where} is a JSON {type(obj).__name__}, expected an object with "text"'
                    )
                text = obj.get("text")
                if not isinstance(text, str):
                    got = 'no "text" field' if text is None else f'a {type(text).__name__} as "text"'
                    raise SourceError(f'{where} has {got}; every line needs a string "text"')
                doc_id = _check_id(obj.get("id", index), where)
                yield where, doc_id, text
                index += 1


@dataclass
class CsvSource(_RowSource):
    """Rows of a CSV file with a header; the text (and optionally the id) come from named columns."""

    path: Path
    text_column: str
    id_column: str | None = None

    def input_key(self) -> str:
        return _key("csv", _where(self.path), self.text_column, self.id_column)

    def _rows(self) -> Iterator[tuple[str, DocId, str]]:
        try:
            yield from self._csv_rows()
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{self.path} is not UTF-8 text ({exc.reason} at byte {exc.start} of a block); save it as "
                "UTF-8 and rerun"
            ) from None

    def _csv_rows(self) -> Iterator[tuple[str, DocId, str]]:
        with open(self.path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            for wanted, flag in ((self.text_column, "--text-column"), (self.id_column, "--id-column")):
                if wanted is not None and wanted not in columns:
                    raise SourceError(
                        f"{self.path} has no column {wanted!r} ({flag}); its columns are: "
                        f"{', '.join(repr(c) for c in columns) or '(none: the file is empty)'}"
                    )
            for index, row in enumerate(reader):
                where = f"{self.path} line {reader.line_num}"
                text = row.get(self.text_column)
                if text is None:
                    raise SourceError(f"{where} has no value in column {self.text_column!r} (a short row?)")
                doc_id: DocId = index
                if self.id_column is not None:
                    raw_id = row.get(self.id_column)
                    if raw_id is None or raw_id == "":
                        raise SourceError(f"{where} has no value in id column {self.id_column!r}")
                    doc_id = raw_id
                yield where, doc_id, text


@dataclass
class DirSource:
    """Every .txt file of a directory (sorted), one document each; the id is the file name."""

    path: Path

    def _files(self) -> list[Path]:
        return sorted(p for p in self.path.iterdir() if p.suffix == ".txt" and p.is_file())

    def paths(self) -> list[Path]:
        return self._files()

    def input_key(self) -> str:
        return _key("dir", _where(self.path))

    def scan(self) -> int:
        files = self._files()
        if not files:
            raise SourceError(f"{self.path} holds no .txt files; put one document per .txt file there")
        for p in files:
            check_utf8(p)
        return len(files)

    def __iter__(self) -> Iterator[tuple[DocId, str]]:
        for p in self._files():
            yield p.name, _read_text(p)


@dataclass
class TextFiles:
    """Files named on the command line, one document each (id: the path as given); "-" is stdin."""

    names: list[str]

    def paths(self) -> list[Path]:
        return self.files()

    def files(self) -> list[Path]:
        return [Path(name) for name in self.names if name != "-"]

    def input_key(self) -> str:
        return _key("files", *(name if name == "-" else _where(Path(name)) for name in self.names))

    def scan(self) -> int:
        seen = _Ids()
        for name in self.names:
            if name != "-" and not Path(name).is_file():
                raise SourceError(f"no such file: {name}")
            seen.add(name, f"argument {name!r}")
        if self.names.count("-") > 1:
            raise SourceError("stdin ('-') can be given once")
        for p in self.files():
            check_utf8(p)
        return len(self.names)

    def __iter__(self) -> Iterator[tuple[DocId, str]]:
        for name in self.names:
            yield name, (sys.stdin.read() if name == "-" else _read_text(Path(name)))


_CHUNK = 1 << 16


def check_utf8(path: Path) -> None:
    """Refuse a file that is not UTF-8, before anything is sent; reads in blocks, so memory stays flat."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with open(path, "rb") as fh:
            while block := fh.read(_CHUNK):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    raise SourceError(_not_utf8(path, exc.reason, offset + exc.start)) from None
                offset += len(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise SourceError(_not_utf8(path, exc.reason, offset + exc.start)) from None
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None


def _not_utf8(path: Path, reason: str, byte: int) -> str:
    return f"{path} is not UTF-8 text ({reason} at byte {byte}); save it as UTF-8 or leave it out, and rerun"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(_not_utf8(path, exc.reason, exc.start)) from None


Source = JsonlSource | CsvSource | DirSource | TextFiles


def open_source(
    files: list[str], input_path: str | None, text_column: str | None, id_column: str | None
) -> Source:
    """The source the command line describes (FILES..., or --input with its format from the path)."""
    if input_path is not None and files:
        raise SourceError("give either FILES or --input, not both")
    if input_path is None:
        if not files:
            raise SourceError(
                "nothing to read: give text FILES, '-' for stdin, or --input IN.jsonl|DIR|file.csv"
            )
        if text_column or id_column:
            raise SourceError("--text-column and --id-column apply to --input with a CSV file")
        return TextFiles(list(files))
    path = Path(input_path)
    if path.is_dir():
        return DirSource(path)
    if not path.is_file():
        raise SourceError(f"no such input file or directory: {input_path}")
    if path.suffix.lower() == ".csv":
        return CsvSource(path, text_column or "text", id_column)
    if text_column or id_column:
        raise SourceError('--text-column and --id-column apply to CSV input; JSONL lines use "text" and "id"')
    return JsonlSource(path)
