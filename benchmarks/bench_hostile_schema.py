"""Hostile schemas: catastrophic regexes on long strings, and deep, cyclic or recursive schemas.

    python benchmarks/bench_hostile_schema.py [--repeat N]

Table 1: time to check a catastrophic pattern against a 10 KB and a 1 MB string that does not match, with
extract's engine (RE2 through `extract._ecma_regex`, and a whole `Validator.is_valid` call), next to
Python's `re` (what python-jsonschema uses) on strings of only 18-22 characters: each extra character
doubles its time, so it is measured on small inputs only.
Table 2: compile time of deep and cyclic schemas (the refusals are SchemaError, measured to the raise), and
validation time of a 10,000-level value against a recursive schema (refused as too deep).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from extract._ecma_regex import compile_ecma
from extract.errors import SchemaError, ValidationFailed
from extract.schema import clear_cache, compile_schema
from extract.schema._validate import Validator, _json_schema_validator

PATTERNS = {
    "nested plus": r"^(a+)+$",
    "alternation star": r"^(a|aa)*$",
    "words": r"^(\w+\s?)*$",
    "email (classic ReDoS)": r"^([a-zA-Z0-9])(([\-.]|[_]+)?([a-zA-Z0-9]+))*(@){1}[a-z0-9]+[.]{1}(([a-z]{2,3})|([a-z]{2,3}[.]{1}[a-z]{2,3}))$",
}
SIZES = {"10 KB": 10_000, "1 MB": 1_000_000}
RE_SMALL = (18, 20, 22)


def _best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}" if seconds < 1 else f"{seconds * 1000:,.0f}"


def regex_table(repeat: int) -> list[str]:
    head = ["pattern"]
    head += [f"extract search {k} ms" for k in SIZES]
    head += [f"Validator.is_valid {k} ms" for k in SIZES]
    head += [f"Python re n={n} ms" for n in RE_SMALL]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, pattern in PATTERNS.items():
        regex = compile_ecma(pattern)
        validator = Validator.for_json_schema({"type": "string", "pattern": pattern})
        shown = pattern if len(pattern) < 20 else pattern[:17] + "..."
        cells = [f"{name} `{shown}`".replace("|", "\\|")]
        texts = {k: "a" * n + "!" for k, n in SIZES.items()}
        for text in texts.values():
            if regex.search(text):
                raise RuntimeError(f"{pattern} should not match")
            cells.append(_ms(_best(lambda t=text, r=regex: r.search(t), repeat)))
        for text in texts.values():
            encoded = json.dumps(text)
            cells.append(_ms(_best(lambda t=encoded, v=validator: v.is_valid(t), repeat)))
        python = re.compile(pattern)
        for n in RE_SMALL:
            text = "a" * n + "!"
            cells.append(_ms(_best(lambda t=text, p=python: p.search(t), 1)))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def _nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


TREE = {
    "type": "object",
    "properties": {"children": {"type": "array", "items": {"$ref": "#"}}},
    "required": ["children"],
}


def _deep_tree(levels: int) -> Any:
    value: Any = {"children": []}
    for _ in range(levels):
        value = {"children": [value]}
    return value


def _compile(schema: Any) -> str:
    clear_cache()
    _json_schema_validator.cache_clear()  # cold compiles: the validator cache is keyed by content
    try:
        compiled = compile_schema(schema)
    except SchemaError:
        return "SchemaError"
    return "strict" if compiled.strict else "non-strict"


def _validate_deep(compiled: Any, value: Any) -> str:
    try:
        compiled.validate(value)
    except ValidationFailed:
        return "ValidationFailed"
    return "valid"


def depth_table(repeat: int) -> list[str]:
    rows = ["| case | outcome | ms |", "|---|---|---|"]
    cases: list[tuple[str, Callable[[], str]]] = [
        (f"{n} levels of properties", lambda n=n: _compile(_nested(n))) for n in (10, 20, 31)
    ]
    cases += [
        ("32 levels of properties (over the bound)", lambda: _compile(_nested(32))),
        ("98 levels of properties (over the bound)", lambda: _compile(_nested(98))),
        ("500 levels of properties (over the bound)", lambda: _compile(_nested(500))),
        ('{"$ref": "#"} (cycle)', lambda: _compile({"$ref": "#"})),
        ("anyOf cycle through $defs", lambda: _compile({"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"})),
        ("recursive tree schema", lambda: _compile(TREE)),
    ]  # fmt: skip
    tree = compile_schema(TREE)
    deep = _deep_tree(10_000)
    cases.append(("validate a 10,000-level value (recursive schema)", lambda: _validate_deep(tree, deep)))
    for name, fn in cases:
        outcome = fn()
        rows.append(f"| {name} | {outcome} | {_ms(statistics.median(_best(fn, 1) for _ in range(repeat)))} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing (the best or median is kept)")
    args = parser.parse_args(argv)
    print("### Catastrophic patterns: a non-matching string of 'a's followed by '!'\n")
    print("\n".join(regex_table(args.repeat)))
    print("\n### Deep, cyclic and recursive schemas\n")
    print("\n".join(depth_table(args.repeat)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
