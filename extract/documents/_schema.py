"""The schema a chunk is asked for: the user's, with "required" relaxed where a chunk may lack a field. Pure.

A chunk that mentions no invoice number must not be forced to invent one, so along the object path from
the root (the root object, and the objects its properties hold, through $refs) nothing is required and an
array may be empty (`minItems` / `minProperties` dropped). Items of arrays stay as they are: a record a
chunk does report must be whole. Everything else (types, enums, patterns, formats) is unchanged, and the
user's full schema is enforced on the merged value.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["chunk_schema"]

_SUFFIX = "__chunk"
_RELAXED = ("required", "minItems", "minProperties")


def chunk_schema(user_schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `user_schema` (normalised: refs into #/$defs) relaxed for one chunk of a document."""
    root = copy.deepcopy(dict(user_schema))
    found = root.get("$defs")
    defs: dict[str, Any] = found if isinstance(found, dict) else {}
    relaxed_defs: dict[str, str] = {}

    def relax(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref[len("#/$defs/") :]
            if name in defs and "/" not in name:
                if name not in relaxed_defs:
                    new = relaxed_defs[name] = name + _SUFFIX
                    defs[new] = {}  # reserved first: a recursive ref stops here
                    defs[new] = relax(copy.deepcopy(defs[name]))
                node = {**node, "$ref": f"#/$defs/{relaxed_defs[name]}"}
        for key in _RELAXED:
            node.pop(key, None)
        properties = node.get("properties")
        if isinstance(properties, dict):
            node["properties"] = {k: relax(v) for k, v in properties.items()}
        for key in ("anyOf", "oneOf", "allOf"):
            branches = node.get(key)
            if isinstance(branches, list):
                node[key] = [relax(b) for b in branches]
        return node

    return relax(root)  # type: ignore[no-any-return]
