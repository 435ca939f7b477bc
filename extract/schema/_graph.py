"""The `$ref` graph of a normalised schema's `$defs`: which definitions recurse, which reach recursion."""

from __future__ import annotations

from typing import Any

from extract.schema._normalise import DEFS_PREFIX, def_name

__all__ = ["cyclic_defs", "reaches"]


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(DEFS_PREFIX):
            out.add(def_name(ref).replace("~1", "/").replace("~0", "~"))
        for key, value in node.items():
            if key not in ("enum", "const", "default", "examples"):
                _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def _graph(defs: dict[str, Any]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, sub in defs.items():
        found: set[str] = set()
        _refs(sub, found)
        graph[name] = {n for n in found if n in defs}
    return graph


def cyclic_defs(defs: dict[str, Any]) -> set[str]:
    """Definitions that can reach themselves through refs."""
    graph = _graph(defs)
    out: set[str] = set()
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            n = todo.pop()
            if n == start:
                out.add(start)
                break
            if n not in seen:
                seen.add(n)
                todo.extend(graph.get(n, ()))
    return out


def reaches(defs: dict[str, Any], targets: set[str]) -> set[str]:
    """Definitions from which some definition in `targets` is reachable (themselves included)."""
    graph = _graph(defs)
    out = set(targets)
    changed = True
    while changed:
        changed = False
        for name, edges in graph.items():
            if name not in out and edges & out:
                out.add(name)
                changed = True
    return out
