"""`require_grounding=True`: which string values of a reply appear nowhere in the text, and what is left
of the replies once those are replaced or removed.

The policy, for a demanding caller (a value the document does not contain is worse than no value):
- every schema-valid reply is checked; a string or number leaf aligned `none` (see `_ground`: numbers
  are found whatever their format) is *ungrounded*; fields marked derived are exempt (a computed total
  or category), and so are booleans (a yes/no is rarely written as such);
- the re-ask names every ungrounded path at once and asks for those fields only to change;
- replies are combined: each ungrounded leaf of a reply takes the grounded value another reply gave at
  the same path (the latest such reply); the base is the reply left with the fewest ungrounded leaves,
  the earliest on a tie, because a re-ask asked for the named fields only to change: what else a re-ask
  changed is not taken;
- once the attempts are spent, the leaves still ungrounded are removed (null where the schema allows,
  else the key or the list item is left out) and recorded in `Result.dropped`; only a leaf that cannot
  be removed (a required, non-nullable field) makes the extraction fail.

Pure: no I/O; the values are JSON in the user's shape, validated again after every change.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from extract.errors import ValidationFailed
from extract.evidence._collect import FieldEvidence, collect
from extract.evidence._ground import Grounder
from extract.evidence._paths import Path, format_path, leaves
from extract.evidence._schema import SchemaIndex

if TYPE_CHECKING:
    from extract.schema import CompiledSchema

__all__ = ["Check", "Grounding", "Settled", "Ungrounded"]

_SHOWN = 80  # characters of an ungrounded value quoted in a re-ask line


@dataclass(frozen=True, slots=True)
class Ungrounded:
    """One string or number found nowhere in the text: its JSONPath, the value, and whether it can be
    removed (set to null, or left out) with the rest of the reply still valid."""

    path: str
    value: str | int | float
    droppable: bool
    where: Path = field(default=(), repr=False, compare=False)

    def error(self) -> str:
        """The re-ask line (and the Attempt's error) for this value."""
        text = self.value if isinstance(self.value, str) else repr(self.value)
        shown = text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
        fix = (
            "copy it exactly as the document writes it, or use null if the document does not give it"
            if self.droppable
            else "this field is required: copy it exactly as the document writes it"
        )
        quoted = repr(shown) if isinstance(self.value, str) else shown
        return f"{self.path}: {quoted} does not appear in the text; {fix}"


@dataclass(frozen=True, slots=True)
class Check:
    """One schema-valid reply checked against the text: its user-shaped JSON and its ungrounded leaves."""

    shaped: Any
    missing: tuple[Ungrounded, ...]

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(m.error() for m in self.missing)


@dataclass(frozen=True, slots=True)
class Settled:
    """The value the checked replies come to. `base`: index (in the checks given) of the reply it was
    read from; `filled`: paths whose value came from another reply; `dropped`: JSONPath -> the ungrounded
    value removed; `blocked`: ungrounded leaves that could not be removed (then `value` is None, and
    `partial` is the JSON with every ungrounded leaf removed all the same, for the caller to salvage)."""

    value: Any
    base: int
    filled: tuple[str, ...] = ()
    dropped: dict[str, Any] = field(default_factory=dict)
    blocked: tuple[Ungrounded, ...] = ()
    partial: Any = None


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json", by_alias=True) if callable(dump) else value


def _get(shaped: Any, path: Path) -> Any:
    node = shaped
    for part in path:
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_list or (isinstance(node, dict) and isinstance(part, str) and part in node)):
            return None
        node = node[part]
    return node


def _checked(leaf: Any) -> bool:
    """A leaf the check applies to: a non-blank string or a number (a boolean cannot be found in text)."""
    if isinstance(leaf, str):
        return bool(leaf.strip())
    return isinstance(leaf, int | float) and not isinstance(leaf, bool)


def _cut(shaped: Any, path: Path) -> bool:
    """Remove the leaf at `path` (its key, its list item) with no regard for the schema."""
    parent = _get(shaped, path[:-1]) if path else None
    last = path[-1] if path else None
    if isinstance(parent, dict) and isinstance(last, str) and last in parent:
        del parent[last]
        return True
    if isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        del parent[last]
        return True
    return False


def _put(shaped: Any, path: Path, leaf: Any) -> bool:
    """Set the leaf at an existing `path` in place; False when there is no such place."""
    if not path:
        return False
    parent = _get(shaped, path[:-1])
    last = path[-1]
    if isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
        parent[last] = leaf
        return True
    if isinstance(parent, dict) and isinstance(last, str) and last in parent:
        parent[last] = leaf
        return True
    return False


def _parent(shaped: Any, path: Path) -> Any:
    return _get(shaped, path[:-1])


class Grounding:
    """The grounding check for one text and schema (built once per extraction, used on every reply)."""

    def __init__(self, compiled: CompiledSchema, text: str) -> None:
        self._compiled = compiled
        self._text = text
        self._grounder = Grounder(text)
        self._index = SchemaIndex.of(compiled.user_schema)

    def _valid(self, shaped: Any) -> Any:
        """The validated value of `shaped`, or ValidationFailed."""
        return self._compiled.validator.validate_value(shaped)

    def _is_valid(self, shaped: Any) -> bool:
        try:
            self._valid(shaped)
        except ValidationFailed:
            return False
        return True

    def _drop(self, shaped: Any, path: Path) -> bool:
        """Remove the leaf at `path` in place (null, else the key, else the list item) if the value stays
        valid; the leaf is put back when nothing works."""
        if not path:
            return False  # the whole value is the string: nothing to remove it from
        parent = _parent(shaped, path)
        last = path[-1]
        if isinstance(parent, dict) and isinstance(last, str):
            old = parent[last]
            parent[last] = None
            if self._is_valid(shaped):
                return True
            del parent[last]
            if self._is_valid(shaped):
                return True
            parent[last] = old  # back in place; key order does not matter to validation or to the caller
            return False
        if isinstance(parent, list) and isinstance(last, int):
            old = parent.pop(last)
            if self._is_valid(shaped):
                return True
            parent.insert(last, old)
        return False

    def check(self, value: Any) -> Check:
        """Check one validated value (a model instance or JSON): its ungrounded string leaves, each with
        whether it could be removed alone."""
        shaped = _plain(value)
        found: list[tuple[Path, Any]] = []
        for path, leaf in leaves(shaped):
            if not _checked(leaf):
                continue
            if self._grounder.match(leaf)[0] != "none" or self._index.facts(self._index.node(path))[0]:
                continue
            found.append((path, leaf))
        missing = []
        for path, leaf in found:
            trial = copy.deepcopy(shaped)
            droppable = self._drop(trial, path)
            missing.append(Ungrounded(format_path(path), leaf, droppable, path))
        return Check(shaped, tuple(missing))

    def settle(self, checks: Sequence[Check], *, drop: bool) -> Settled | None:
        """Combine the checked replies (see the module docstring). With drop=False: the combined value
        when it has no ungrounded leaf left, else None. With drop=True: the value with the remaining
        ungrounded leaves removed, or a Settled whose `blocked` names those that could not be."""
        if not checks:
            return None
        combined = [self._combine(checks, i) for i in range(len(checks))]
        base = min(range(len(checks)), key=lambda i: (len(combined[i][1]), i))
        shaped, remaining, filled = combined[base]
        if remaining and not drop:
            return None
        dropped: dict[str, Any] = {}
        blocked: list[Ungrounded] = []
        for item in reversed(remaining):  # last first, so removing a list item leaves earlier paths intact
            if self._drop(shaped, item.where):
                dropped[item.path] = item.value
            else:
                blocked.append(item)
        if not blocked:
            try:
                value = self._valid(shaped)
            except ValidationFailed:
                blocked = list(reversed(remaining))  # removed one by one but not together: none removed
                shaped = self._combine(checks, base)[0]
                dropped = {}
            else:
                return Settled(value, base, tuple(filled), dict(reversed(list(dropped.items()))))
        for item in blocked:  # the partial value: what is grounded, nothing else, whatever the schema says
            if _cut(shaped, item.where):
                dropped[item.path] = item.value
        order = {item.path: i for i, item in enumerate(checks[base].missing)}
        return Settled(
            None,
            base,
            tuple(filled),
            dict(sorted(dropped.items(), key=lambda kv: order.get(kv[0], 0))),
            blocked=tuple(reversed(blocked)),
            partial=shaped,
        )

    def _combine(self, checks: Sequence[Check], base: int) -> tuple[Any, list[Ungrounded], list[str]]:
        """Reply `base` with each of its ungrounded leaves replaced by a grounded value another reply gave
        at that path: (JSON, leaves still ungrounded, paths filled); the reply alone if the mix is invalid."""
        shaped = copy.deepcopy(checks[base].shaped)
        remaining: list[Ungrounded] = []
        filled: list[str] = []
        for item in checks[base].missing:
            donor = self._donor(checks, base, item.where)
            if donor is not None and _put(shaped, item.where, donor):
                filled.append(item.path)
            else:
                remaining.append(item)
        if filled and not self._is_valid(shaped):
            return copy.deepcopy(checks[base].shaped), list(checks[base].missing), []
        return shaped, remaining, filled

    def _donor(self, checks: Sequence[Check], base: int, path: Path) -> Any:
        """A grounded string or number another reply gave at `path` (the latest such reply), else None."""
        for i in range(len(checks) - 1, -1, -1):
            if i == base:
                continue
            leaf = _get(checks[i].shaped, path)
            if not _checked(leaf):
                continue
            if any(m.where == path for m in checks[i].missing):
                continue
            return leaf
        return None

    def evidence(
        self,
        content: str | None,
        value: Any,
        logprobs: Sequence[Mapping[str, Any]] | None,
    ) -> dict[str, FieldEvidence]:
        """Evidence for a settled value read from the reply `content`: a leaf the reply wrote keeps its
        confidence; a leaf taken from another reply gets its spans and alignment, no confidence; a leaf
        removed is absent (it is in `Result.dropped`)."""
        found = collect(self._compiled, self._text, content, value, logprobs, self._grounder)
        out: dict[str, FieldEvidence] = {}
        for path, leaf in leaves(_plain(value)):
            key = format_path(path)
            entry = found.get(key)
            if (
                entry is None
                or entry.value != leaf
                or isinstance(entry.value, bool) != isinstance(leaf, bool)
            ):
                alignment, spans, score = self._grounder.match(leaf)
                derived = self._index.facts(self._index.node(path))[0]
                entry = FieldEvidence(key, leaf, spans, alignment, None, score, derived)
            out[key] = entry
        return out
