"""Size passes over finished schemas: share repeated subtrees through `$defs`, strip annotations.

Both build new dicts; the wire dicts the codecs hold on to are never changed.
"""

from __future__ import annotations

from typing import Any

from extract.schema._codec import dump_json
from extract.schema._normalise import subschemas

__all__ = ["expanded_size", "hoist_repeats", "strip_annotations"]

_ANNOTATIONS = frozenset(
    {
        "title",
        "examples",
        "example",
        "default",
        "$id",
        "id",
        "$comment",
        "readOnly",
        "writeOnly",
        "deprecated",
        "$anchor",
        "$dynamicAnchor",
        "$vocabulary",
    }
)


class _Interner:
    """Structural ids and compact-JSON sizes of schema nodes, memoised by object identity.

    The transform shares identical subtrees (one dict reused wherever a definition is used), so a wire
    schema is a DAG whose expanded JSON can be exponentially larger than its memory: everything here is
    linear in the number of distinct dicts, never in the expanded size.
    """

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.by_obj: dict[int, tuple[int, int]] = {}  # id(obj) -> (structural id, compact size)
        self.keep: list[Any] = []  # keeps memoised objects alive so their ids stay unique

    def visit(self, node: Any) -> tuple[int, int]:
        if not isinstance(node, (dict, list)):
            text = dump_json(node)
            return self.intern(("leaf", text)), len(text)
        found = self.by_obj.get(id(node))
        if found is not None:
            return found
        if isinstance(node, dict):
            parts = [(k, self.visit(v)) for k, v in node.items()]
            sig: Any = ("dict", tuple(sorted((k, sid) for k, (sid, _) in parts)))
            size = 2 + sum(len(dump_json(k)) + 1 + sz for k, (_, sz) in parts) + max(len(parts) - 1, 0)
        else:
            items = [self.visit(v) for v in node]
            sig = ("list", tuple(sid for sid, _ in items))
            size = 2 + sum(sz for _, sz in items) + max(len(items) - 1, 0)
        result = (self.intern(sig), size)
        self.by_obj[id(node)] = result
        self.keep.append(node)
        return result

    def intern(self, sig: Any) -> int:
        found = self.ids.get(sig)
        if found is None:
            found = self.ids[sig] = len(self.ids)
        return found


def expanded_size(schema: Any) -> int:
    """Characters of `schema` as compact JSON, computed without building the JSON (shared subtrees)."""
    return _Interner().visit(schema)[1]


def _children(node: dict[str, Any]) -> list[tuple[Any, bool]]:
    """(child schema, may be replaced by a $ref) for the schema positions the wire subset uses."""
    out: list[tuple[Any, bool]] = []
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out.extend((sub, True) for sub in value.values())
        elif key in ("items", "anyOf", "prefixItems"):
            out.extend((sub, True) for sub in (value if isinstance(value, list) else [value]))
        elif key == "$defs" and isinstance(value, dict):
            out.extend((sub, False) for sub in value.values())
    return out


def hoist_repeats(wire: dict[str, Any], min_chars: int = 80) -> dict[str, Any]:
    """Replace object subtrees that occur more than once by a `$ref` to one copy in root `$defs`.

    Strict mode allows `$ref` to `#/$defs/...`, so a sub-model used in ten places costs its size once.
    Linear in the number of distinct dicts, even when the expanded schema would be huge.
    """
    interner = _Interner()
    interner.visit(wire)
    # occurrences of each structural id in the expanded tree, propagated top-down over the DAG
    order: list[dict[str, Any]] = []
    seen: set[int] = set()

    def topo(node: Any) -> None:
        if not isinstance(node, dict) or id(node) in seen:
            return
        seen.add(id(node))
        for child, _ in _children(node):
            topo(child)
        order.append(node)

    topo(wire)
    order.reverse()  # parents before children
    times: dict[int, int] = {id(wire): 1}
    shareable: dict[int, int] = {}  # structural id -> occurrences in replaceable positions
    for node in order:
        n = times.get(id(node), 0)
        for child, replaceable in _children(node):
            if isinstance(child, dict):
                times[id(child)] = times.get(id(child), 0) + n
                if replaceable and child.get("type") == "object":
                    sid, size = interner.by_obj[id(child)]
                    if size >= min_chars:
                        shareable[sid] = shareable.get(sid, 0) + n
    shared = {sid for sid, n in shareable.items() if n > 1}
    if not shared:
        return wire
    defs: dict[str, Any] = dict(wire.get("$defs", {}))
    names: dict[int, str] = {}
    built: dict[int, Any] = {}

    def rebuild(node: Any, replaceable: bool) -> Any:
        if isinstance(node, list):
            return [rebuild(x, True) for x in node]
        if not isinstance(node, dict):
            return node
        sid = interner.by_obj[id(node)][0]
        if replaceable and sid in shared:
            if sid not in names:
                n = len(names) + 1
                while f"Shared{n}" in defs:
                    n += 1
                names[sid] = f"Shared{n}"
                defs[names[sid]] = None  # reserve the name before recursing
                defs[names[sid]] = rebuild_children(node)
            return {"$ref": f"#/$defs/{names[sid]}"}
        if id(node) in built:
            return built[id(node)]
        out = rebuild_children(node)
        built[id(node)] = out
        return out

    def rebuild_children(node: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                out[key] = {k: rebuild(v, True) for k, v in value.items()}
            elif key in ("items", "anyOf", "prefixItems"):
                out[key] = rebuild(value, True)
            elif key == "$defs":
                continue
            else:
                out[key] = value
        return out

    body = rebuild_children(wire)
    for name, sub in list(defs.items()):
        if name not in names.values() and isinstance(sub, dict):
            defs[name] = rebuild_children(sub)
    body["$defs"] = defs
    return body


def strip_annotations(schema: Any) -> Any:
    """The schema without annotation-only keywords (titles, examples, defaults, ids, `x-` extensions).

    `$schema` stays: a non-strict server reads the draft from it.
    """
    if isinstance(schema, list):
        return [strip_annotations(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    subs = {rel.split("/", 1)[0] for rel, _ in subschemas(schema)}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _ANNOTATIONS or key.startswith("x-"):
            continue
        if key in subs:
            if isinstance(value, dict) and key in (
                "properties",
                "patternProperties",
                "$defs",
                "definitions",
                "dependentSchemas",
                "dependencies",
            ):
                out[key] = {k: strip_annotations(v) for k, v in value.items()}
            else:
                out[key] = strip_annotations(value)
        else:
            out[key] = value
    return out
