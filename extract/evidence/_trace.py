"""Which wire path each user-shaped leaf was written at, following the compiler's codecs.

The model writes the wire shape (maps as key/value entries, tuples as item_N objects, optional fields
wrapped, any-JSON as a string); the caller reads the user shape. `trace` mirrors each codec's `decode`
(extract/schema/_codec.py) but returns, for every user path, the wire path whose tokens carried it. A leaf
decoded out of a JSON-text string or an object-valued enum maps to that whole string. Pure.
"""

from __future__ import annotations

from typing import Any

from extract.evidence._paths import Path, leaves
from extract.schema._codec import (
    Arr,
    Codec,
    EnumMap,
    JsonText,
    MapEntries,
    Obj,
    Ref,
    TupleObj,
    Union,
    Wrap,
    wire_match,
)

__all__ = ["trace"]

_MAX_DEPTH = 256

Mapping_ = dict[Path, Path]


def _identity(w: Any, user: Path, wire: Path, out: Mapping_) -> None:
    if not isinstance(w, (dict, list)):  # a leaf (most calls): no walk
        if w is not None:
            out[user] = wire
        return
    for suffix, _ in leaves(w):
        out[user + suffix] = wire + suffix


def _whole(decoded: Any, user: Path, wire: Path, out: Mapping_) -> None:
    for suffix, _ in leaves(decoded):
        out[user + suffix] = wire


def _walk(codec: Codec, w: Any, user: Path, wire: Path, out: Mapping_, depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(codec, Ref):
        _walk(codec.table[codec.name], w, user, wire, out, depth + 1)
    elif isinstance(codec, (JsonText, EnumMap)):
        decoded = codec.decode(w)
        if isinstance(w, str) and decoded is not w:
            _whole(decoded, user, wire, out)
        else:
            _identity(w, user, wire, out)
    elif isinstance(codec, Obj) and isinstance(w, dict):
        done: set[str] = set()
        known: set[str] = set()
        for f in codec.fields:
            known.add(f.wire_name)
            if f.wire_name not in w:
                continue
            value = w[f.wire_name]
            at = (*wire, f.wire_name)
            if value is None and f.mode in ("drop_null", "wrapped"):
                continue
            if f.mode == "wrapped" and isinstance(value, dict) and set(value) == {"value"}:
                value, at = value["value"], (*at, "value")
            done.add(f.name)
            _walk(f.codec, value, (*user, f.name), at, out, depth + 1)
        if codec.extra_key is not None and codec.extra is not None:
            known.add(codec.extra_key)
            extras = w.get(codec.extra_key, [])
            if isinstance(codec.extra.decode(extras), dict):
                inner: Mapping_ = {}
                _walk(codec.extra, extras, (), (*wire, codec.extra_key), inner, depth + 1)
                for path, wire_path in inner.items():
                    if path and path[0] not in done:
                        out[user + path] = wire_path
                done.update(str(p[0]) for p in inner if p)
        for key, value in w.items():
            if key not in known and key not in done:
                _identity(value, (*user, key), (*wire, key), out)
    elif isinstance(codec, Arr) and isinstance(w, list):
        for i, x in enumerate(w):
            _walk(codec._codec(i), x, (*user, i), (*wire, i), out, depth + 1)
    elif isinstance(codec, TupleObj) and isinstance(w, dict):
        for i, item in enumerate(codec.items):
            key = f"item_{i}"
            if key not in w:
                break
            _walk(item, w[key], (*user, i), (*wire, key), out, depth + 1)
    elif isinstance(codec, MapEntries) and isinstance(w, list):
        if isinstance(codec.decode(w), dict):
            for i, entry in enumerate(w):
                _walk(codec.value, entry["value"], (*user, entry["key"]), (*wire, i, "value"), out, depth + 1)
        else:
            _identity(w, user, wire, out)
    elif isinstance(codec, Wrap) and isinstance(w, dict) and set(w) == {codec.key}:
        _walk(codec.inner, w[codec.key], user, (*wire, codec.key), out, depth + 1)
    elif isinstance(codec, Union):
        for schema, branch in codec.branches:
            if wire_match(schema, w, codec.defs):
                _walk(branch, w, user, wire, out, depth + 1)
                return
        _identity(w, user, wire, out)
    else:
        _identity(w, user, wire, out)


def trace(codec: Codec, wire_value: Any) -> dict[Path, Path]:
    """user leaf path -> the wire path of the value that carried it."""
    out: Mapping_ = {}
    try:
        _walk(codec, wire_value, (), (), out, 0)
    except RecursionError:
        return {}
    return out
