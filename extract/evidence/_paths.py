"""JSONPaths of leaf values: `$.a.b[0]`, with bracket-quoted keys where a dotted name would be ambiguous.

Pure.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

__all__ = ["Path", "format_path", "leaves"]

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
