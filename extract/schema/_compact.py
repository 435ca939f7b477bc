"""Size passes over finished schemas: share repeated subtrees through `$defs`, strip annotations.

Both build new dicts; the wire dicts the codecs hold on to are never changed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from extract.schema._normalise import subschemas

__all__ = ["hoist_repeats", "strip_annotations"]

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


def _key(node: Any) -> bytes:
    return orjson.dumps(node, option=orjson.OPT_SORT_KEYS)


def hoist_repeats(wire: dict[str, Any], min_chars: int = 80) -> dict[str, Any]:
    """Replace object subtrees that occur more than once by a `$ref` to one copy in root `$defs`.

    Strict mode allows `$ref` to `#/$defs/...`, so a sub-model used in ten places costs its size once.
    """
    counts: Counter[bytes] = Counter()

    def count(node: Any, top: bool) -> None:
        if isinstance(node, dict):
            if not top and node.get("type") == "object":
                counts[_key(node)] += 1
            for key, value in node.items():
                if key == "properties" and isinstance(value, dict):
                    for sub in value.values():
                        count(sub, False)
                elif key in ("items", "anyOf", "prefixItems"):
                    for sub in value if isinstance(value, list) else [value]:
                        count(sub, False)
                elif key == "$defs" and isinstance(value, dict):
                    for sub in value.values():
                        count(sub, True)

    count(wire, True)
    shared = {k: n for k, n in counts.items() if n > 1 and len(k) >= min_chars}
    if not shared:
        return wire
    defs: dict[str, Any] = dict(wire.get("$defs", {}))
    names: dict[bytes, str] = {}

    def name_for(key: bytes) -> str:
        if key not in names:
            base, n = "Shared", len(names) + 1
            while f"{base}{n}" in defs:
                n += 1
            names[key] = f"{base}{n}"
            defs[names[key]] = None  # reserve; filled below
        return names[key]

    def rebuild(node: Any, top: bool) -> Any:
        if isinstance(node, list):
            return [rebuild(x, False) for x in node]
        if not isinstance(node, dict):
            return node
        if not top and node.get("type") == "object":
            key = _key(node)
            if key in shared:
                fresh = key not in names
                ref = name_for(key)
                if fresh:
                    defs[ref] = rebuild_children(node)
                return {"$ref": f"#/$defs/{ref}"}
        return rebuild_children(node)

    def rebuild_children(node: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                out[key] = {k: rebuild(v, False) for k, v in value.items()}
            elif key in ("items", "anyOf", "prefixItems"):
                out[key] = rebuild(value, False)
            elif key == "$defs":
                continue
            else:
                out[key] = value
        return out

    body = rebuild(wire, True)
    for name, sub in list(defs.items()):
        if name not in names.values() and sub is not None:
            defs[name] = rebuild_children(sub) if isinstance(sub, dict) else sub
    body["$defs"] = defs
    return dict(body)


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
