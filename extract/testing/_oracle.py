"""The oracle answer mode: reply with exactly what a pattern finds in the document the request carries. Pure.

For end-to-end tests of chunking and merging, where the right answer for any chunk must be known: every
match of `records` (a regex with named groups, e.g. ``RECORD id=(?P<id>\\S+) name=(?P<name>\\S+)``) in the
first user message becomes one item of the schema's first array property (its named groups the item's
fields), and every match of `fields` (groups ``key`` and ``value``, e.g. ``FIELD (?P<key>\\w+)=(?P<value>\\S+)``)
sets that top-level property (the first match per key); properties the chunk does not mention are null.
Values are converted to the schema's integer, number or boolean types where it asks for them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["oracle_value"]


def _resolve(node: Any, defs: Mapping[str, Any]) -> Mapping[str, Any]:
    for _ in range(32):
        if not isinstance(node, Mapping):
            return {}
        ref = node.get("$ref")
        if isinstance(ref, str):
            node = defs.get(ref.rsplit("/", 1)[-1], {})
            continue
        branches = node.get("anyOf")
        if isinstance(branches, list):
            real = [b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")]
            if real:
                node = real[0]
                continue
        return node
    return {}


def _typed(text: str, node: Mapping[str, Any]) -> Any:
    kind = node.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    try:
        if "integer" in kinds:
            return int(text)
        if "number" in kinds:
            return float(text)
    except ValueError:
        return text
    if "boolean" in kinds:
        return text.lower() in ("true", "yes", "1")
    return text


def oracle_value(
    schema: Mapping[str, Any], document: str, records: re.Pattern[str] | None, fields: re.Pattern[str] | None
) -> dict[str, Any]:
    """The value the oracle answers for `document` under the (wire) `schema`."""
    defs: Mapping[str, Any] = schema.get("$defs") or {}
    root = _resolve(schema, defs)
    properties: Mapping[str, Any] = root.get("properties") or {}
    found: dict[str, str] = {}
    if fields is not None:
        for match in fields.finditer(document):
            found.setdefault(match.group("key"), match.group("value"))
    value: dict[str, Any] = {}
    array_filled = False
    for name, child in properties.items():
        node = _resolve(child, defs)
        if node.get("type") == "array" and not array_filled and records is not None:
            item = _resolve(node.get("items"), defs)
            item_props: Mapping[str, Any] = item.get("properties") or {}
            value[name] = [
                {
                    k: _typed(v, _resolve(item_props.get(k), defs))
                    for k, v in m.groupdict().items()
                    if k in item_props
                }
                for m in records.finditer(document)
            ]
            array_filled = True
        elif name in found:
            value[name] = _typed(found[name], node)
        else:
            value[name] = [] if node.get("type") == "array" else None
    return value


RECORD_PATTERN = r"RECORD id=(?P<id>\S+) name=(?P<name>\S+)"
FIELD_PATTERN = r"FIELD (?P<key>\w+)=(?P<value>\S+)"
_WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do")


def planted_document(
    size: int, *, seed: int = 0, every: int = 400, paragraph: int = 50_000
) -> tuple[str, list[tuple[str, str, int, int]]]:
    """A document of about `size` characters: words with a `RECORD id=... name=...` line planted about every
    `every` characters (inline, so a chunk may be cut inside one) and a blank line about every `paragraph`
    characters. Returns the text and the records as (id, name, start, end); for the oracle's tests."""
    import random

    rng = random.Random(seed)
    pieces: list[str] = []
    records: list[tuple[str, str, int, int]] = []
    length = 0
    next_record = rng.randint(1, every)
    next_paragraph = paragraph
    while length < size:
        if length >= next_record:
            number = len(records)
            record = f"RECORD id=r{number} name=n{rng.randint(0, 10**6)}"
            records.append((f"r{number}", record.rsplit("=", 1)[1], length, length + len(record)))
            piece = record + " "
            next_record = length + rng.randint(every // 2, every * 3 // 2)
        elif length >= next_paragraph:
            piece = "\n\n"
            next_paragraph += paragraph
        else:
            piece = rng.choice(_WORDS) + " "
        pieces.append(piece)
        length += len(piece)
    return "".join(pieces) + "\n", records
