"""The grammar the embedded model decodes under: a schema's GBNF when it is safe, else a demotion.

llama-cpp-python would build the grammar itself from `response_format.schema`, and a grammar its C parser
refuses kills the process (see _gbnf). Here the grammar is built before generation, in three levels:

1. "schema": the wire schema, with every `pattern` translated into the converter's subset (_pattern) or
   left out, and size bounds the converter would unroll into huge grammars left out; converted with
   llama.cpp's own converter, then checked (check_gbnf). If that grammar is refused, once more with every
   pattern left out, so a translation the engine still refuses costs the pattern, not the schema.
2. "json": any JSON value (llama.cpp's generic JSON grammar), when level 1 fails.
3. "none": no grammar at all (the prompt alone asks for JSON), when even that fails.

Whatever the grammar leaves out, the client still validates against the user's full schema. Pure: the
converter is passed in, so this module never imports llama.cpp.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from extract._local._gbnf import check_gbnf
from extract._local._pattern import MAX_REPEAT, translate_pattern

__all__ = ["Grammar", "choose_grammar", "relax_for_grammar"]

Level = Literal["schema", "json", "none"]

# Keywords whose value is data, not a schema: never rewritten.
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples", "example"})
_SIZE_KEYWORDS = ("minLength", "maxLength", "minItems", "maxItems")
_MAX_NODES = 20_000


@dataclass(frozen=True, slots=True)
class Grammar:
    """GBNF text for the sampler (None: decode without a grammar), how far it was demoted, and why."""

    text: str | None
    level: Level
    notes: tuple[str, ...] = ()


def relax_for_grammar(schema: Any, *, patterns: bool = True) -> tuple[Any, list[str]]:
    """A copy of `schema` the converter turns into a sound grammar, and what was relaxed on the way.

    `patterns=False` leaves every pattern out. Iterative (no recursion on the schema's depth) and bounded in
    the number of nodes it copies.
    """
    notes: list[str] = []
    root: list[Any] = [None]
    # (source node, container to write the copy into, key in that container)
    stack: list[tuple[Any, Any, Any]] = [(schema, root, 0)]
    seen = 0
    while stack:
        node, parent, slot = stack.pop()
        seen += 1
        if seen > _MAX_NODES:
            raise ValueError(f"schema has more than {_MAX_NODES} nodes")
        if isinstance(node, Mapping):
            copy: dict[str, Any] = {}
            parent[slot] = copy
            for key, value in node.items():
                if key in _DATA_KEYWORDS:
                    copy[key] = value
                elif key == "pattern" and isinstance(value, str):
                    translated = translate_pattern(value) if patterns else None
                    if translated is None:
                        notes.append(f"pattern {value[:60]!r} left to client-side validation")
                    else:
                        copy[key] = translated
                elif key in _SIZE_KEYWORDS and isinstance(value, int) and value > MAX_REPEAT:
                    notes.append(f"{key}={value} left to client-side validation")
                else:
                    copy[key] = None
                    stack.append((value, copy, key))
        elif isinstance(node, list):
            items: list[Any] = [None] * len(node)
            parent[slot] = items
            stack.extend((value, items, index) for index, value in enumerate(node))
        else:
            parent[slot] = node
    return root[0], notes


def choose_grammar(
    schema: Mapping[str, Any] | None,
    *,
    convert: Callable[[str], str],
    json_grammar: str,
    accepts: Callable[[str], bool] = lambda _text: True,
) -> Grammar:
    """The first level whose grammar passes check_gbnf and `accepts` (the engine's own parse, if given).

    `schema` None asks for any JSON value (json_object without a schema).
    """
    notes: list[str] = []
    if schema is not None:
        tried: Any = None
        for patterns in (True, False):
            try:
                relaxed, relax_notes = relax_for_grammar(schema, patterns=patterns)
                if relaxed == tried:
                    break  # nothing was left to leave out: the same grammar again
                tried = relaxed
                text = convert(json.dumps(relaxed))
            # The converter is third-party code that signals an unsupported schema with assertions,
            # KeyError, ValueError, TypeError or RecursionError alike: any of them means "no schema grammar".
            except Exception as exc:  # noqa: BLE001
                notes.append(f"the schema has no llama.cpp grammar ({type(exc).__name__}: {str(exc)[:120]})")
                break
            problem = check_gbnf(text)
            if problem is None and accepts(text):
                return Grammar(text, "schema", tuple(notes + relax_notes))
            notes.append(f"llama.cpp would refuse the schema's grammar ({problem or 'parse failed'})")
    if check_gbnf(json_grammar) is None and accepts(json_grammar):
        return Grammar(json_grammar, "json", tuple(notes))
    notes.append("llama.cpp refused its own JSON grammar")
    return Grammar(None, "none", tuple(notes))
