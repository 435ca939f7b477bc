"""Conformance on JSONSchemaBench's maskbench: thousands of real schemas with labelled instances.

For every schema, `Validator.for_json_schema` and `compile_schema(schema).validate` must accept exactly the
instances python-jsonschema accepts (format checking on, same draft choice, no remote `$ref`s). How often the
benchmark's LLM-written labels agree with jsonschema is reported for information only.

By default a deterministic quarter of the files is checked (every 4th in name order) to keep the suite fast;
``EXTRACT_MASKBENCH=all`` checks all of them, and ``python tests/test_maskbench.py`` runs everything and
prints the figures.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import referencing
import referencing.exceptions

from extract.errors import SchemaError, ValidationFailed
from extract.schema._validate import Validator

ROOT = Path(__file__).resolve().parents[1]
MASKBENCH = ROOT.parent / "shared" / "corpus" / "jsonschemabench" / "maskbench"
STRIDE = 1 if os.environ.get("EXTRACT_MASKBENCH", "").lower() == "all" else 4
SHARDS = 16

_DRAFTS = {
    "json-schema.org/draft-03/schema": jsonschema.Draft3Validator,
    "json-schema.org/draft-04/schema": jsonschema.Draft4Validator,
    "json-schema.org/draft-06/schema": jsonschema.Draft6Validator,
    "json-schema.org/draft-07/schema": jsonschema.Draft7Validator,
    "json-schema.org/draft/2019-09/schema": jsonschema.Draft201909Validator,
    "json-schema.org/draft/2020-12/schema": jsonschema.Draft202012Validator,
}
_NEWEST_FIRST = [
    jsonschema.Draft202012Validator,
    jsonschema.Draft201909Validator,
    jsonschema.Draft7Validator,
    jsonschema.Draft6Validator,
    jsonschema.Draft4Validator,
]


def reference_validator(schema: Any) -> Any | None:
    """python-jsonschema on its own: the draft `$schema` names, else the newest whose metaschema accepts the
    schema; None when jsonschema rejects the schema itself."""
    declared = schema.get("$schema") if isinstance(schema, Mapping) else None
    key = declared.rstrip("#").split("://", 1)[-1].rstrip("/") if isinstance(declared, str) else None
    candidates = [_DRAFTS[key]] if key in _DRAFTS else _NEWEST_FIRST
    for cls in candidates:
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError:
            continue
        return cls(schema, format_checker=cls.FORMAT_CHECKER, registry=referencing.Registry())
    return None


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def check_file(path: Path, tally: Tally, *, through_compiler: bool) -> None:
    """Compare our validators with jsonschema on one maskbench file; record disagreements in `tally`."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    schema, tests = doc["schema"], doc["tests"]
    reference = reference_validator(schema)
    tally.counts["schemas"] += 1
    if reference is None:
        tally.counts["schemas rejected by jsonschema"] += 1
        try:
            Validator.for_json_schema(schema)
        except SchemaError:
            pass
        else:
            tally.problems.append(f"{path.name}: jsonschema rejects the schema but Validator accepted it")
        if through_compiler and tests:
            data = tests[0]["data"]
            _expect_compiler_schema_error(
                path, schema, orjson.dumps(data) if isinstance(data, str) else data, tally
            )
        return
    ours = Validator.for_json_schema(schema)
    if ours.draft != type(reference).__name__:
        tally.problems.append(f"{path.name}: draft {ours.draft} != {type(reference).__name__}")
    compiled = _compile(path, schema, tally) if through_compiler else None
    for index, test in enumerate(tests):
        data = test["data"]
        # our validators read a Python str as JSON text, so a bare string instance goes in as its JSON
        ours_data = orjson.dumps(data) if isinstance(data, str) else data
        where = f"{path.name} test {index}"
        try:
            expected = reference.is_valid(data)
        except referencing.exceptions.Unresolvable:
            tally.counts["instances with unresolvable $ref"] += 1
            _expect_schema_error(lambda d=ours_data: ours.is_valid(d), where, tally)
            continue
        tally.counts["instances"] += 1
        tally.counts["labels agree" if expected == test["valid"] else "labels disagree"] += 1
        if ours.is_valid(ours_data) != expected:
            tally.problems.append(f"{where}: Validator.is_valid != jsonschema ({expected})")
        _check_validate(lambda d=ours_data: ours.validate(d), expected, f"{where} Validator.validate", tally)
        if compiled is not None:
            _check_validate(
                lambda d=ours_data: compiled.validate(d), expected, f"{where} compiled.validate", tally
            )


def _compile(path: Path, schema: Any, tally: Tally) -> Any:
    from extract.schema import compile_schema

    try:
        return compile_schema(schema)
    except SchemaError as exc:
        tally.problems.append(f"{path.name}: compile_schema rejected a schema jsonschema accepts: {exc}")
        return None


def _expect_compiler_schema_error(path: Path, schema: Any, data: Any, tally: Tally) -> None:
    """A schema jsonschema rejects must give SchemaError from compile_schema or, at the latest, from validate."""
    from extract.schema import compile_schema

    try:
        compile_schema(schema).validate(data)
    except SchemaError:
        return
    except ValidationFailed:
        pass
    tally.problems.append(
        f"{path.name}: jsonschema rejects the schema but the compiler never raised SchemaError"
    )


def _expect_schema_error(call: Any, where: str, tally: Tally) -> None:
    try:
        call()
    except SchemaError:
        return
    tally.problems.append(f"{where}: an unresolvable $ref must raise SchemaError")


def _check_validate(call: Any, expected: bool, where: str, tally: Tally) -> None:
    try:
        call()
    except ValidationFailed as exc:
        if expected:
            tally.problems.append(f"{where}: rejected a valid instance: {exc.violations[:2]}")
        elif not exc.violations:
            tally.problems.append(f"{where}: ValidationFailed without violations")
        return
    if not expected:
        tally.problems.append(f"{where}: accepted an instance jsonschema rejects")


def _has_compiler() -> bool:
    import extract.schema

    return hasattr(extract.schema, "compile_schema")


FILES = sorted(MASKBENCH.glob("*.json"))[::STRIDE] if MASKBENCH.is_dir() else []
TOTAL = Tally()


@pytest.mark.parametrize("shard", range(SHARDS))
def test_maskbench_shard(shard: int) -> None:
    if not FILES:
        pytest.skip(
            f"maskbench corpus not found at {MASKBENCH} (it lives outside the repo, in ../shared/corpus)"
        )
    tally = Tally()
    for path in FILES[shard::SHARDS]:
        check_file(path, tally, through_compiler=_has_compiler())
    TOTAL.counts.update(tally.counts)
    assert tally.counts["schemas"] > 0
    assert not tally.problems, "\n".join(tally.problems[:30])


def test_schema_jsonschema_rejects_is_a_schema_error_everywhere(tmp_path: Path) -> None:
    """The corpus has one such schema (duplicate enum values under draft-04); this runs the same path always."""
    doc = {
        "schema": {"$schema": "http://json-schema.org/draft-04/schema#", "enum": ["a", "a"]},
        "tests": [{"description": "x", "valid": True, "data": "a"}],
    }
    path = tmp_path / "rejected.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    tally = Tally()
    check_file(path, tally, through_compiler=_has_compiler())
    assert tally.counts["schemas rejected by jsonschema"] == 1
    assert tally.problems == []


def test_a_disagreement_is_caught(tmp_path: Path) -> None:
    """The checker itself can fail: a label-independent mismatch shows up as a problem."""
    doc = {"schema": {"type": "integer"}, "tests": [{"description": "x", "valid": True, "data": 3}]}
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    tally = Tally()
    check_file(path, tally, through_compiler=False)
    assert tally.problems == []
    _check_validate(lambda: None, False, "synthetic", tally)
    assert tally.problems == ["synthetic: accepted an instance jsonschema rejects"]


def test_maskbench_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """Information only: how often the benchmark's LLM labels agree with jsonschema."""
    if not TOTAL.counts["instances"]:
        pytest.skip("no maskbench shard ran in this session")
    with capsys.disabled():
        print("\n" + summary(TOTAL))


def summary(tally: Tally) -> str:
    counts = tally.counts
    agree = counts["labels agree"] / max(1, counts["instances"])
    return (
        f"maskbench: {counts['schemas']} schemas ({counts['schemas rejected by jsonschema']} rejected by jsonschema), "
        f"{counts['instances']} instances; LLM labels agree with jsonschema on {agree:.1%}"
    )


def main() -> int:
    """Full run over every file, with the compiler when it exists: `python tests/test_maskbench.py`."""
    if not MASKBENCH.is_dir():
        print(f"maskbench corpus not found at {MASKBENCH}", file=sys.stderr)
        return 2
    tally = Tally()
    for path in sorted(MASKBENCH.glob("*.json")):
        check_file(path, tally, through_compiler=_has_compiler())
    print(summary(tally))
    for problem in tally.problems:
        print(problem)
    print(f"{len(tally.problems)} disagreements")
    return 1 if tally.problems else 0


if __name__ == "__main__":
    sys.exit(main())
