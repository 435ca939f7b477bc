"""What the user's schema says about a leaf: the values it could have taken (enum, boolean) and whether
it is derived (computed by the model, so not expected in the text). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extract.evidence._paths import Path

__all__ = ["DERIVED_KEYS", "choices", "is_derived", "node_at"]

DERIVED_KEYS = ("derived", "x-derived")
"""A property whose schema has `"derived": true` (pydantic: `Field(json_schema_extra={"derived": True})`)
or `"x-derived": true` is computed, not copied (a total, a category): `require_grounding` exempts it."""

_MAX_HOPS = 64


def _resolve(node: Any, root: Mapping[str, Any]) -> Any:
    hops = 0
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and hops < _MAX_HOPS:
        ref: str = node["$ref"]
        if not ref.startswith("#/"):
            return node
        target: Any = root
        for part in ref[2:].split("/"):
            target = (
                target.get(part.replace("~1", "/").replace("~0", "~"))
                if isinstance(target, Mapping)
                else None
            )
        if target is None:
            return node
        node = target
        hops += 1
    return node


def _branches(node: Mapping[str, Any], root: Mapping[str, Any]) -> list[Any]:
    out = [node]
    for key in ("anyOf", "oneOf", "allOf"):
        found = node.get(key)
        if isinstance(found, list):
            out.extend(_resolve(b, root) for b in found)
    return out


def _step(node: Any, part: str | int, root: Mapping[str, Any]) -> Any:
    for branch in _branches(node, root) if isinstance(node, Mapping) else []:
        if not isinstance(branch, Mapping):
            continue
        if isinstance(part, int):
            prefix = branch.get("prefixItems")
            if isinstance(prefix, list) and part < len(prefix):
                return _resolve(prefix[part], root)
            if isinstance(branch.get("items"), Mapping):
                return _resolve(branch["items"], root)
        else:
            props = branch.get("properties")
            if isinstance(props, Mapping) and part in props:
                return _resolve(props[part], root)
            extra = branch.get("additionalProperties")
            if isinstance(extra, Mapping):
                return _resolve(extra, root)
    return None


def node_at(schema: Mapping[str, Any], path: Path) -> Mapping[str, Any] | None:
    """The schema of the value at `path` (None where the schema does not say)."""
    node: Any = _resolve(schema, schema)
    for part in path:
        node = _step(node, part, schema)
        if node is None:
            return None
    return node if isinstance(node, Mapping) else None


class SchemaIndex:
    """node_at with memory: the leaves of one value share their parents' lookups."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self._nodes: dict[Path, Any] = {(): _resolve(schema, schema)}

    def node(self, path: Path) -> Mapping[str, Any] | None:
        found = self._nodes.get(path, False)
        if found is False:
            parent = self.node(path[:-1]) if len(path) > 1 else self._nodes[()]
            found = _step(parent, path[-1], self.schema) if parent is not None else None
            self._nodes[path] = found
        return found if isinstance(found, Mapping) else None


def is_derived(node: Mapping[str, Any] | None, schema: Mapping[str, Any]) -> bool:
    if node is None:
        return False
    return any(
        isinstance(b, Mapping) and any(b.get(k) is True for k in DERIVED_KEYS)
        for b in _branches(node, schema)
    )


def choices(node: Mapping[str, Any] | None, schema: Mapping[str, Any], value: Any) -> tuple[str, ...]:
    """The other values the model could have written here, as text (empty when the choice is open)."""
    if isinstance(value, bool):
        return ("false",) if value else ("true",)
    if node is None:
        return ()
    for branch in _branches(node, schema):
        if isinstance(branch, Mapping) and isinstance(branch.get("enum"), list):
            return tuple(str(m) for m in branch["enum"] if m != value and isinstance(m, (str, int, float)))
    return ()
