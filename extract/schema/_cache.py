"""Compile once per (schema, provider): batch jobs call `extract(Model, text)` millions of times.

Keys: pydantic types by the type object itself (bounded LRU, so a notebook redefining a class does not
grow memory without end), dicts by their canonical JSON, files by (resolved path, mtime).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson

from extract.schema._load import is_path

__all__ = ["LRU", "cache_key"]

T = TypeVar("T")


class LRU(Generic[T]):
    """A small thread-safe least-recently-used map."""

    def __init__(self, maxsize: int = 512) -> None:
        self._data: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()
        self.maxsize = maxsize

    def get(self, key: Hashable) -> T | None:
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
            return found

    def put(self, key: Hashable, value: T) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


def cache_key(schema: Any, profile: Hashable) -> Hashable | None:
    """A key for `schema` under `profile`, or None when it cannot be cached (then it is compiled afresh)."""
    if is_path(schema):
        path = Path(schema)
        try:
            resolved = path.resolve()
            mtime = resolved.stat().st_mtime_ns
        except OSError:
            return None  # loading will raise a SchemaError naming the file
        return ("file", str(resolved), mtime, profile)
    if isinstance(schema, (dict, bool)):
        try:
            return ("json", orjson.dumps(schema, option=orjson.OPT_SORT_KEYS), profile)
        except TypeError:
            return None
    try:
        hash(schema)
    except TypeError:
        return None
    return ("type", schema, profile)
