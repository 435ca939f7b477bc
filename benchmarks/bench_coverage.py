"""Schema coverage: how many real-world JSON Schemas each system turns into one Cerebras' strict mode accepts.

For every schema of a corpus split (../shared/corpus/jsonschemabench/schemas/<split>/*.json), each
system transforms it for strict mode, and the result counts as covered when
`extract.schema.strict_violations(result, "cerebras") == []`. A transform that raises counts as not
covered. Also reported: the median transform time per schema.

Systems: extract's compiler (`compile_schema(schema, "cerebras").wire_schema`), the OpenAI SDK's
strict transform (`openai.lib._pydantic._ensure_strict_json_schema`, the dict-level function behind
`to_strict_json_schema`), and pydantic-ai's transformer for Cerebras models (the Cerebras provider
profile's `json_schema_transformer`, `OpenAIJsonSchemaTransformer`, with strict=True).

    python benchmarks/bench_coverage.py [--quick] [--limit N] [--splits a,b]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import CORPUS, Row, Unavailable, markdown_table, median

NAME = "coverage"
Transform = Callable[[dict[str, Any]], Any]


def _extract() -> Transform:
    try:
        from extract.schema import compile_schema
    except ImportError as exc:
        raise Unavailable(f"extract.schema.compile_schema is not importable yet ({exc})") from exc

    def transform(schema: dict[str, Any]) -> Any:
        compiled = compile_schema(schema, "cerebras")
        return compiled.wire_schema if compiled.strict else None

    return transform


def _openai() -> Transform:
    try:
        from openai.lib._pydantic import _ensure_strict_json_schema
    except ImportError as exc:
        raise Unavailable("openai is not installed (pip install -e '.[bench]')") from exc

    def transform(schema: dict[str, Any]) -> Any:
        return _ensure_strict_json_schema(schema, path=(), root=schema)

    return transform


def _pydantic_ai() -> Transform:
    try:
        from pydantic_ai.providers.cerebras import CerebrasProvider
    except ImportError as exc:
        raise Unavailable("pydantic-ai-slim[openai] is not installed (pip install -e '.[bench]')") from exc
    from benchmarks.peers._model import MODEL_NAME

    profile: Any = CerebrasProvider.model_profile(MODEL_NAME) or {}
    transformer = (
        profile.get("json_schema_transformer")
        if isinstance(profile, dict)
        else getattr(profile, "json_schema_transformer", None)
    )
    if transformer is None:
        raise Unavailable(f"pydantic-ai's Cerebras profile for {MODEL_NAME} has no json_schema_transformer")

    def transform(schema: dict[str, Any]) -> Any:
        return transformer(schema, strict=True).walk()

    return transform


SYSTEMS: dict[str, Callable[[], Transform]] = {
    "extract": _extract,
    "openai-sdk": _openai,
    "pydantic-ai": _pydantic_ai,
}


def _strict_check() -> Callable[[Any], bool]:
    try:
        from extract.schema import strict_violations
    except ImportError as exc:
        raise Unavailable(f"extract.schema.strict_violations is not importable yet ({exc})") from exc

    def ok(result: Any) -> bool:
        return isinstance(result, dict) and not strict_violations(result, "cerebras")

    return ok


def splits(root: Path) -> list[Path]:
    base = root / "schemas"
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir())


def load(split: Path, limit: int | None) -> list[dict[str, Any]]:
    schemas: list[dict[str, Any]] = []
    for path in sorted(split.glob("*.json")):
        if limit is not None and len(schemas) >= limit:
            break
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(data, dict):
            schemas.append(data)
    return schemas


def measure(
    transform: Transform, ok: Callable[[Any], bool], schemas: Sequence[dict[str, Any]]
) -> tuple[int, float]:
    """(schemas covered, median µs per transform). Each call gets its own deep copy (peers mutate)."""
    covered = 0
    times: list[float] = []
    for schema in schemas:
        mine = copy.deepcopy(schema)
        t0 = time.perf_counter()
        try:
            result = transform(mine)
        except Exception:  # a transform that gives up on a schema simply does not cover it
            result = None
        times.append((time.perf_counter() - t0) * 1e6)
        try:
            if ok(result):
                covered += 1
        except Exception:  # a result the checker cannot even read is not inside the subset
            pass
    return covered, median(times)


def main(argv: Sequence[str] | None = None) -> list[Row]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="first 15 schemas of each split")
    p.add_argument("--limit", type=int, help="at most N schemas per split")
    p.add_argument("--splits", help="comma-separated split names (default: all)")
    p.add_argument("--corpus", type=Path, default=CORPUS, help=f"corpus folder (default {CORPUS})")
    args = p.parse_args(argv)
    limit = args.limit if args.limit is not None else (15 if args.quick else None)
    found = splits(args.corpus)
    if not found:
        raise Unavailable(f"JSONSchemaBench corpus not found at {args.corpus / 'schemas'}")
    if args.splits:
        wanted = set(args.splits.split(","))
        found = [s for s in found if s.name in wanted]
    ok = _strict_check()
    transforms: dict[str, Transform | str] = {}
    for name, factory in SYSTEMS.items():
        try:
            transforms[name] = factory()
        except Unavailable as exc:
            transforms[name] = f"skipped: {exc}"
    rows: list[Row] = []
    totals: dict[str, int] = dict.fromkeys(SYSTEMS, 0)
    count = 0
    for split in found:
        schemas = load(split, limit)
        count += len(schemas)
        row: Row = {"split": split.name, "schemas": len(schemas)}
        timing: Row = {}
        for name, transform in transforms.items():
            if isinstance(transform, str):
                row[f"{name} % strict-ready"] = transform
                continue
            covered, us = measure(transform, ok, schemas)
            totals[name] += covered
            row[f"{name} % strict-ready"] = 100.0 * covered / len(schemas) if schemas else float("nan")
            timing[f"{name} µs/schema (median)"] = us
        row.update(timing)
        rows.append(row)
    total: Row = {"split": "all", "schemas": count}
    for name, transform in transforms.items():
        total[f"{name} % strict-ready"] = (
            transform
            if isinstance(transform, str)
            else (100.0 * totals[name] / count if count else float("nan"))
        )
    rows.append(total)
    return rows


if __name__ == "__main__":
    print(markdown_table(main()))
