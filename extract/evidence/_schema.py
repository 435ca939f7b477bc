"""What the user's schema says about a leaf: the values it could have taken (enum, boolean) and whether
it is derived (computed by the model, so not expected in the text). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extract.evidence._paths import Path, format_path

__all__ = [
    "DERIVED_KEYS",
    "MAX_CHOICE_WIDTH",
    "SchemaIndex",
    "choice_width",
    "choices",
    "is_derived",
    "node_at",
]

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


_MAX_REMEMBERED = 10_000


class SchemaIndex:
    """node_at with memory: leaves share their parents' lookups (bounded: cleared past 10,000 paths)."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self._nodes: dict[Path, Any] = {(): _resolve(schema, schema)}
        self._facts: dict[int, tuple[bool, tuple[Any, ...] | None]] = {}
        self._path_facts: dict[Path, tuple[bool, tuple[Any, ...] | None]] = {}
        self.leaves: dict[Path, tuple[str, bool, tuple[Any, ...] | None]] = {}
        """path -> `leaf(path)`, filled by `leaf` (read it directly in a loop: a miss calls `leaf`)."""

    def leaf(self, path: Path) -> tuple[str, bool, tuple[Any, ...] | None]:
        """(JSONPath, derived, enum members or None) of a leaf's path: what evidence needs of the schema
        for each leaf, worked out once per path (bounded like the nodes)."""
        found = self.leaves.get(path)
        if found is None:
            found = (format_path(path), *self.path_facts(path))
            if len(self.leaves) >= _MAX_REMEMBERED:
                self.leaves = {}
            self.leaves[path] = found
        return found

    def path_facts(self, path: Path) -> tuple[bool, tuple[Any, ...] | None]:
        """`facts(node(path))`, remembered per path (bounded like the nodes)."""
        found = self._path_facts.get(path)
        if found is None:
            found = self.facts(self.node(path))
            if len(self._path_facts) >= _MAX_REMEMBERED:
                self._path_facts = {}
            self._path_facts[path] = found
        return found

    def facts(self, node: Mapping[str, Any] | None) -> tuple[bool, tuple[Any, ...] | None]:
        """(derived, enum members or None) of a node, worked out once per node."""
        if node is None:
            return False, None
        found = self._facts.get(id(node))
        if found is None:
            derived = is_derived(node, self.schema)
            members = next(
                (
                    tuple(b["enum"])
                    for b in _branches(node, self.schema)
                    if isinstance(b, Mapping) and isinstance(b.get("enum"), list)
                ),
                None,
            )
            found = self._facts[id(node)] = (derived, members)
        return found

    @classmethod
    def of(cls, schema: Mapping[str, Any]) -> SchemaIndex:
        """The index of a schema object, kept between calls (schemas are compiled once and reused)."""
        cached = _INDEXES.get(id(schema))
        if cached is not None and cached.schema is schema:
            return cached
        if len(_INDEXES) >= 256:
            _INDEXES.clear()
        index = _INDEXES[id(schema)] = cls(schema)
        return index

    def node(self, path: Path) -> Mapping[str, Any] | None:
        key = path
        found = self._nodes.get(key, False)
        if found is False:
            parent = self.node(path[:-1]) if len(path) > 1 else self._nodes[()]
            found = _step(parent, path[-1], self.schema) if parent is not None else None
            if len(self._nodes) >= _MAX_REMEMBERED:
                self._nodes = {(): self._nodes[()]}
            self._nodes[key] = found
        return found if isinstance(found, Mapping) else None


_INDEXES: dict[int, SchemaIndex] = {}


def is_derived(node: Mapping[str, Any] | None, schema: Mapping[str, Any]) -> bool:
    if node is None:
        return False
    return any(
        isinstance(b, Mapping) and any(b.get(k) is True for k in DERIVED_KEYS)
        for b in _branches(node, schema)
    )


def choices(members: tuple[Any, ...] | None, value: Any) -> tuple[str, ...]:
    """The other values the model could have written here, as text (empty when the choice is open)."""
    if isinstance(value, bool):
        return ("false",) if value else ("true",)
    if not members:
        return ()
    return tuple(str(m) for m in members if m != value and isinstance(m, (str, int, float)))


_CHOICES: dict[int, tuple[object, int]] = {}
MAX_CHOICE_WIDTH = 5


def choice_width(schema: Mapping[str, Any]) -> int:
    """How many `top_logprobs` the schema's choices need: 2 for a boolean, the size of the largest enum
    (at most MAX_CHOICE_WIDTH), 0 when it has neither: then none are asked for (they multiply the
    reply's size). Remembered per schema object."""
    cached = _CHOICES.get(id(schema))
    if cached is not None and cached[0] is schema:
        return cached[1]
    width = 0
    stack: list[Any] = [schema]
    while stack and width < MAX_CHOICE_WIDTH:
        node = stack.pop()
        if isinstance(node, Mapping):
            kind = node.get("type")
            if kind == "boolean" or (isinstance(kind, list) and "boolean" in kind):
                width = max(width, 2)
            members = node.get("enum")
            if isinstance(members, list):
                width = max(width, min(len(members), MAX_CHOICE_WIDTH))
            stack.extend(v for k, v in node.items() if k not in ("enum", "const", "default", "examples"))
        elif isinstance(node, list):
            stack.extend(node)
    if len(_CHOICES) >= 1024:
        _CHOICES.clear()
    _CHOICES[id(schema)] = (schema, width)
    return width
