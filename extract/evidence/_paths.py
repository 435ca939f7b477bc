"""JSONPaths of leaf values: `$.a.b[0]`, with bracket-quoted keys where a dotted name would be ambiguous.

Pure.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

__all__ = ["Path", "format_path", "leaf_list", "leaves"]

Path = tuple[str | int, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@functools.lru_cache(maxsize=8192)
def format_path(path: Path) -> str:
    """`("items", 0, "unit price")` -> `$.items[0]["unit price"]` (keys that are not identifiers are quoted)."""
    parts = ["$"]
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _PLAIN_KEY.match(part):
            parts.append(f".{part}")
        else:
            parts.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(parts)


def leaves(value: Any, prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every leaf (string, number, boolean) of a JSON value with its path, in document order; nulls are
    absent values, not leaves. Iterative, so a deep value cannot exhaust the stack."""
    stack: list[tuple[Path, Any]] = [(prefix, value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            stack.extend(((*path, str(k)), v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(node))))
        elif node is not None:
            yield path, node


_FAST_DEPTH = 200


class _TooDeep(Exception):
    pass


def leaf_list(value: Any) -> list[tuple[Path, Any]]:
    """`list(leaves(value))`, built faster: recursive over the containers (one call per object or array,
    not per leaf), with `leaves` taking over for a value nested deeper than the stack should go."""
    out: list[tuple[Path, Any]] = []
    try:
        _collect(value, (), out, 0)
    except _TooDeep:
        return list(leaves(value))
    return out


def _collect(node: Any, path: Path, out: list[tuple[Path, Any]], depth: int) -> None:
    if depth > _FAST_DEPTH:
        raise _TooDeep
    if isinstance(node, dict):
        for key, child in node.items():
            if isinstance(child, (dict, list)):
                _collect(child, (*path, str(key)), out, depth + 1)
            elif child is not None:
                out.append(((*path, str(key)), child))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            if isinstance(child, (dict, list)):
                _collect(child, (*path, index), out, depth + 1)
            elif child is not None:
                out.append(((*path, index), child))
    elif node is not None:
        out.append((path, node))
