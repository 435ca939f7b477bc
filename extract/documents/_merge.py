"""Merge the values extracted from a document's chunks into one, as the schema says. Pure.

Per node of the user's JSON Schema, values given in document order (each with its chunk's range):

- objects merge property by property, recursively;
- arrays are concatenated in document order; an item that a previous chunk overlapping this one already
  gave (equal as JSON, or equal on the key fields named by the schema) is the same item seen twice in
  the overlap and is kept once (each earlier item absorbs one repeat: identical records that really occur
  twice inside one overlap cannot be told apart, so name key fields that tell them apart);
- anything else is a scalar, resolved by the node's policy: ``first`` non-null value in document order
  (the default), ``last``, ``most_frequent`` (ties go to the earliest), or ``highest_confidence``: the
  value the model was surest of (its chunk's token probability for that field, see `extract.evidence`;
  ties and chunks without logprobs fall back to document order, so with no logprobs at all it is
  ``first``). Different non-null values are a `Disagreement` (path, values, chunk ranges), kept on the
  Result.

A chunk's null means "not in this chunk" (the chunk schema makes required fields nullable), never a value.

Policies are set per node, in the JSON Schema as ``"x-merge"`` or with pydantic
``Field(json_schema_extra={"merge": ...})``: a policy name for scalars, or for arrays
``{"key": ["id", ...]}`` (dedupe by these fields), ``"concat"`` (keep every item) or ``"dedupe"``
(equality, the default).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from extract.errors import ConfigurationError
from extract.results import Disagreement

__all__ = ["SCALAR_POLICIES", "Part", "check_policies", "merge_parts", "uses_policy"]

SCALAR_POLICIES = ("first", "last", "most_frequent", "highest_confidence")
_ARRAY_POLICIES = ("dedupe", "concat")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # as extract.evidence._paths.format_path writes keys


@dataclass(frozen=True, slots=True)
class Part:
    """One chunk's value and the range [start, end) of the document it was extracted from; `confidence`
    maps a leaf's JSONPath in the value (`$.a.b`) to the model's probability for it, when known."""

    start: int
    end: int
    value: Any
    confidence: Mapping[str, float] | None = None


def _policy_of(node: Mapping[str, Any]) -> Any:
    return node.get("x-merge", node.get("merge"))


def _schema_nodes(node: Any, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every subschema of `node` (not the names inside `properties`, which may well be called "merge")."""
    stack: list[tuple[str, Any]] = [(path, node)]
    while stack:
        where, current = stack.pop()
        if not isinstance(current, Mapping):
            continue
        yield where, current
        for key in _SUBSCHEMA_ONE:
            if key in current:
                stack.append((f"{where}/{key}", current[key]))
        for key in _SUBSCHEMA_LISTS:
            items = current.get(key)
            if isinstance(items, list):
                stack.extend((f"{where}/{key}/{i}", item) for i, item in enumerate(items))
        for key in _SUBSCHEMA_MAPS:
            children = current.get(key)
            if isinstance(children, Mapping):
                stack.extend((f"{where}/{key}/{name}", child) for name, child in children.items())


def uses_policy(schema: Mapping[str, Any], policy: str) -> bool:
    """Whether any node of `schema` names this merge policy (to collect only the evidence it needs)."""
    return any(_policy_of(node) == policy for _, node in _schema_nodes(schema, "#"))


def _child(path: str, name: str) -> str:
    """`$.a` + `b` -> `$.a.b`; a key that is not an identifier is bracket-quoted (as evidence paths are)."""
    return f"{path}.{name}" if _PLAIN_KEY.match(name) else f"{path}[{json.dumps(name, ensure_ascii=False)}]"


def check_policies(schema: Mapping[str, Any]) -> None:
    """ConfigurationError for a merge policy that is not one of the documented forms (before any request)."""
    for where, node in _schema_nodes(schema, "#"):
        policy = _policy_of(node)
        if policy is None:
            continue
        if isinstance(policy, str) and policy in SCALAR_POLICIES + _ARRAY_POLICIES:
            continue
        if isinstance(policy, Mapping) and _keys(policy) is not None:
            continue
        raise ConfigurationError(
            f"merge policy {policy!r} at {where} is not valid: use one of {', '.join(SCALAR_POLICIES)} for "
            "a scalar, or 'dedupe', 'concat' or {'key': ['field', ...]} for an array"
        )


def _keys(policy: Mapping[str, Any]) -> tuple[str, ...] | None:
    key = policy.get("key")
    if isinstance(key, str):
        return (key,)
    if isinstance(key, Sequence) and key and all(isinstance(k, str) for k in key):
        return tuple(key)
    return None


class _Merger:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.defs: Mapping[str, Any] = root.get("$defs") or root.get("definitions") or {}
        self.disagreements: list[Disagreement] = []
        self.confidence: dict[str, float] = {}  # merged leaf path -> the confidence of the part it came from

    def resolve(self, node: Any) -> Mapping[str, Any]:
        """Follow local $refs, and see through Optional (anyOf [X, null]) to X."""
        for _ in range(64):
            if not isinstance(node, Mapping):
                return {}
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                name = ref.rsplit("/", 1)[-1]
                target = self.defs.get(name)
                if target is None:
                    return node
                node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
                continue
            branches = node.get("anyOf") or node.get("oneOf")
            if isinstance(branches, list):
                real = [b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")]
                if len(real) == 1:
                    node = {**real[0], **{k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}}
                    continue
            return node
        return {}

    def merge(self, node: Any, parts: list[Part], path: str) -> Any:
        schema = self.resolve(node)
        present = [p for p in parts if p.value is not None]
        if not present:
            return None
        if all(isinstance(p.value, dict) for p in present):
            return self.merge_object(schema, present, path)
        if all(isinstance(p.value, list) for p in present):
            return self.merge_array(schema, present, path)
        return self.merge_scalar(schema, present, path)

    def merge_object(self, schema: Mapping[str, Any], parts: list[Part], path: str) -> dict[str, Any]:
        listed = schema.get("properties")
        properties: Mapping[str, Any] = listed if isinstance(listed, Mapping) else {}
        extra = schema.get("additionalProperties")
        names: dict[str, None] = {}
        for part in parts:
            names.update(dict.fromkeys(part.value))
        merged: dict[str, Any] = {}
        for name in names:
            child = properties.get(name, extra if isinstance(extra, Mapping) else {})
            given = [Part(p.start, p.end, p.value[name], p.confidence) for p in parts if name in p.value]
            value = self.merge(child, given, _child(path, name))
            if value is not None or _accepts_null(child, self):
                merged[name] = value
        return merged

    def merge_array(self, schema: Mapping[str, Any], parts: list[Part], path: str) -> list[Any]:
        policy = _policy_of(schema)
        keys = _keys(policy) if isinstance(policy, Mapping) else None
        out: list[Any] = []
        earlier: list[tuple[Part, Counter[bytes]]] = []
        for part in parts:
            identities = [_identity(item, keys) for item in part.value]
            scores = _by_item(part.confidence, path) if part.confidence else {}
            if policy == "concat":
                for index, item in enumerate(part.value):
                    self.carry(scores.get(index), f"{path}[{len(out)}]")
                    out.append(item)
                continue
            # items that an overlapping earlier chunk gave: each absorbs one repeat here
            seen: Counter[bytes] = Counter()
            for previous, ids in earlier:
                if previous.end > part.start:
                    seen.update(ids)
            for index, (item, identity) in enumerate(zip(part.value, identities, strict=True)):
                if seen[identity] > 0:
                    seen[identity] -= 1
                    continue
                self.carry(scores.get(index), f"{path}[{len(out)}]")
                out.append(item)
            earlier.append((part, Counter(identities)))
        return out

    def carry(self, scores: list[tuple[str, float]] | None, prefix: str) -> None:
        """The confidences of an item's leaves, now at `prefix` in the merged value."""
        for rest, score in scores or ():
            self.confidence[prefix + rest] = score

    def merge_scalar(self, schema: Mapping[str, Any], parts: list[Part], path: str) -> Any:
        chosen = self.choose_scalar(schema, parts, path)
        score = (chosen.confidence or {}).get(path)
        if score is not None:
            self.confidence[path] = score
        return chosen.value

    def choose_scalar(self, schema: Mapping[str, Any], parts: list[Part], path: str) -> Part:
        policy = _policy_of(schema)
        encoded = [_canonical(p.value) for p in parts]
        if len(set(encoded)) > 1:
            self.disagreements.append(
                Disagreement(
                    path=path,
                    values=tuple(p.value for p in parts),
                    ranges=tuple((p.start, p.end) for p in parts),
                )
            )
        if policy == "last":
            return parts[-1]
        if policy == "highest_confidence":
            scores = [(p.confidence or {}).get(path) for p in parts]
            known = [(score, -i) for i, score in enumerate(scores) if score is not None]
            return parts[-max(known)[1]] if known else parts[0]
        if policy == "most_frequent":
            counts = Counter(encoded)
            best = max(counts.values())
            return next(p for p, e in zip(parts, encoded, strict=True) if counts[e] == best)
        return parts[0]


def _accepts_null(node: Any, merger: _Merger) -> bool:
    if not isinstance(node, Mapping):
        return False
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    ref = node.get("$ref")
    if isinstance(ref, str):
        return _accepts_null(merger.defs.get(ref.rsplit("/", 1)[-1]), merger)
    branches = node.get("anyOf") or node.get("oneOf")
    return isinstance(branches, list) and any(_accepts_null(b, merger) for b in branches)


def _canonical(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits: the json module writes any size
        return json.dumps(value, sort_keys=True, default=str).encode()


def _identity(item: Any, keys: tuple[str, ...] | None) -> bytes:
    if keys is not None and isinstance(item, Mapping):
        return _canonical([item.get(k) for k in keys])
    return _canonical(item)


def _by_item(confidence: Mapping[str, float], path: str) -> dict[int, list[tuple[str, float]]]:
    """A part's leaf confidences under the array at `path`, by item index, each with its path after the item."""
    out: dict[int, list[tuple[str, float]]] = {}
    head = path + "["
    for key, score in confidence.items():
        if not key.startswith(head):
            continue
        close = key.find("]", len(head))
        digits = key[len(head) : close]
        if close > 0 and digits.isdigit():
            out.setdefault(int(digits), []).append((key[close + 1 :], score))
    return out


def merge_parts(
    schema: Mapping[str, Any], parts: Sequence[Part], confidence: dict[str, float] | None = None
) -> tuple[Any, list[Disagreement]]:
    """The merged value of `parts` (in document order) under `schema`, and the disagreements found.
    `confidence`, when given, is filled with each merged leaf's confidence: the one the part it was taken
    from gave it (`Part.confidence`; a scalar at its path, an array item's leaves under their new index)."""
    merger = _Merger(schema)
    value = merger.merge(schema, list(parts), "$")
    if confidence is not None:
        confidence.update(merger.confidence)
    return value, merger.disagreements
