"""Schema compiler over the JSONSchemaBench corpus: how many schemas compile strict, how fast, how faithfully.

    python benchmarks/bench_schema.py [--profile cerebras] [--limit N] [--split NAME]

Prints one markdown table row per split of ../shared/corpus/jsonschemabench/schemas/:
count, % strict, % non-strict fallback, % SchemaError, crashes, compile time (median, p99), repeat-compile
time as a share of the first, and representability: of the corpus's labelled valid instances
(maskbench), the share that encode to a value the wire schema accepts and decode back unchanged; and
soundness: of random wire instances (what a constrained model could emit) that decode and pass
`validate`, the share the original schema accepts (must be 100%).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import jsonschema

from extract.errors import SchemaError, ValidationFailed
from extract.schema import clear_cache, compile_schema, strict_violations
from extract.schema._codec import same_json

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "jsonschemabench"


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}" if total else "-"


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _instances(split: str, stem: str) -> list[Any]:
    path = CORPUS / "maskbench" / f"{split}---{stem}.json"
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return [t["data"] for t in data.get("tests", []) if t.get("valid")]


_STRINGS = ["", "x", "hello world", "1", "2.5", "true", "null", "{}", "[]", '{"a": 1}', '["x", 2]', "a@b.co"]


def wire_sample(s: Any, defs: dict[str, Any], rng: random.Random, depth: int = 0) -> Any:
    """A random instance of a wire schema (the strict subset only): what a constrained model could emit."""
    if "$ref" in s:
        return wire_sample(defs[s["$ref"].rsplit("/", 1)[-1]], defs, rng, depth)
    if "anyOf" in s:
        return wire_sample(rng.choice(s["anyOf"]), defs, rng, depth)
    if "enum" in s:
        return rng.choice(s["enum"])
    t = s.get("type")
    if t == "object":
        props = s.get("properties", {})
        return {k: wire_sample(v, defs, rng, depth + 1) for k, v in props.items()}
    if t == "array":
        if "prefixItems" in s:
            return [wire_sample(v, defs, rng, depth + 1) for v in s["prefixItems"]]
        n = 0 if depth > 6 else rng.choice([0, 1, 1, 2, 3])
        return [wire_sample(s["items"], defs, rng, depth + 1) for _ in range(n)]
    if t == "string":
        return rng.choice(_STRINGS)
    if t == "integer":
        return rng.choice([0, 1, -3, 42, 10**6])
    if t == "number":
        return rng.choice([0, 1.5, -2.25, 3, 1e9])
    if t == "boolean":
        return rng.choice([True, False])
    return None


def soundness(compiled: Any, original: Any, rng: random.Random, draws: int) -> tuple[int, int]:
    """(accepted, accepted and valid under the original schema) over `draws` random wire instances."""
    accepted = sound = 0
    cls = jsonschema.validators.validator_for(original, jsonschema.Draft202012Validator)
    oracle = cls(original, format_checker=cls.FORMAT_CHECKER)
    defs = compiled.wire_schema.get("$defs", {})
    for _ in range(draws):
        decoded = compiled.decode(wire_sample(compiled.wire_schema, defs, rng))
        try:
            compiled.validate(decoded)
        except ValidationFailed:
            continue
        accepted += 1
        sound += oracle.is_valid(decoded)
    return accepted, sound


def run_split(split_dir: Path, profile: str, limit: int | None, verbose: bool, draws: int) -> dict[str, Any]:
    files = sorted(split_dir.glob("*.json"))[:limit]
    rng = random.Random(12345)
    accepted_total = sound_total = 0
    strict = fallback = schema_errors = crashes = 0
    first_ms: list[float] = []
    repeat_ratio: list[float] = []
    rep_ok = rep_total = 0
    violations = 0
    for path in files:
        try:
            schema = json.loads(path.read_text())
        except ValueError:
            schema_errors += 1
            continue
        t0 = time.perf_counter()
        try:
            compiled = compile_schema(schema, profile)
        except SchemaError:
            schema_errors += 1
            continue
        except Exception:
            crashes += 1
            if verbose:
                print(f"CRASH {path}", file=sys.stderr)
                traceback.print_exc()
            continue
        first = time.perf_counter() - t0
        t1 = time.perf_counter()
        compile_schema(schema, profile)
        again = time.perf_counter() - t1
        first_ms.append(first * 1000)
        repeat_ratio.append(again / first if first > 0 else 0.0)
        if compiled.strict:
            strict += 1
            if strict_violations(compiled.wire_schema, profile):
                violations += 1
            if draws:
                try:
                    accepted, sound = soundness(compiled, schema, rng, draws)
                except Exception:
                    crashes += 1
                    if verbose:
                        print(f"CRASH (soundness) {path}", file=sys.stderr)
                        traceback.print_exc()
                else:
                    accepted_total += accepted
                    sound_total += sound
        else:
            fallback += 1
        instances = _instances(split_dir.name, path.stem)
        if not instances:
            continue
        try:
            cls = jsonschema.validators.validator_for(compiled.wire_schema, jsonschema.Draft202012Validator)
            wire_check = cls(compiled.wire_schema)
        except Exception:
            continue
        for value in instances:
            rep_total += 1
            try:
                encoded = compiled.encode(value)
                if wire_check.is_valid(encoded) and same_json(compiled.decode(encoded), value):
                    rep_ok += 1
            except ValueError:
                pass
            except Exception:
                crashes += 1
                if verbose:
                    print(f"CRASH (encode) {path}", file=sys.stderr)
                    traceback.print_exc()
    count = len(files)
    return {
        "split": split_dir.name,
        "count": count,
        "strict": _pct(strict, count),
        "fallback": _pct(fallback, count),
        "schema_error": _pct(schema_errors, count),
        "crashes": crashes,
        "median_ms": statistics.median(first_ms) if first_ms else 0.0,
        "p99_ms": _quantile(first_ms, 0.99),
        "repeat_pct": 100.0 * statistics.median(repeat_ratio) if repeat_ratio else 0.0,
        "representable": _pct(rep_ok, rep_total),
        "rep_n": rep_total,
        "subset_violations": violations,
        "soundness": _pct(sound_total, accepted_total),
        "sound_n": accepted_total,
    }


def _models() -> list[Any]:
    """A few typical pydantic models: flat, nested with lists and maps, recursive."""
    from pydantic import BaseModel, Field

    class Contact(BaseModel):
        name: str = Field(description="full name")
        email: str | None = None
        phone: str | None = None
        age: int = Field(ge=0)

    class Line(BaseModel):
        sku: str
        qty: int = Field(ge=1)
        price: float
        tags: list[str] = []

    class Invoice(BaseModel):
        number: str
        seller: Contact
        buyer: Contact
        lines: list[Line]
        totals: dict[str, float]
        notes: str | None = None

    class Node(BaseModel):
        label: str
        children: list[Node] = []

    return [Contact, Invoice, Node, list[Invoice]]


def bench_models(profile: str) -> None:
    print("\n| pydantic model | first compile ms | repeat compile us | repeat / first |")
    print("|---|---|---|---|")
    for model in _models():
        clear_cache()
        t0 = time.perf_counter()
        compile_schema(model, profile)
        first = time.perf_counter() - t0
        n = 2000
        t1 = time.perf_counter()
        for _ in range(n):
            compile_schema(model, profile)
        again = (time.perf_counter() - t1) / n
        name = repr(model) if getattr(model, "__args__", None) else model.__name__
        print(f"| {name} | {first * 1000:.2f} | {again * 1e6:.2f} | {100 * again / first:.3f}% |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", default="cerebras")
    parser.add_argument("--limit", type=int, default=None, help="schemas per split (default: all)")
    parser.add_argument("--split", default=None, help="only this split")
    parser.add_argument("--verbose", action="store_true", help="print tracebacks of crashes")
    parser.add_argument(
        "--draws", type=int, default=20, help="random wire instances per strict schema for soundness"
    )
    args = parser.parse_args(argv)
    schemas = CORPUS / "schemas"
    if not schemas.is_dir():
        print(f"corpus not found at {schemas}", file=sys.stderr)
        return 2
    clear_cache()
    print(f"profile: {args.profile}\n")
    print(
        "| split | count | % strict | % non-strict | % SchemaError | crashes | compile median ms | "
        "compile p99 ms | repeat / first | representable % (n) | sound % (n) | strict but outside subset |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for split_dir in sorted(p for p in schemas.iterdir() if p.is_dir()):
        if args.split and split_dir.name != args.split:
            continue
        r = run_split(split_dir, args.profile, args.limit, args.verbose, args.draws)
        print(
            f"| {r['split']} | {r['count']} | {r['strict']} | {r['fallback']} | {r['schema_error']} | "
            f"{r['crashes']} | {r['median_ms']:.2f} | {r['p99_ms']:.2f} | {r['repeat_pct']:.2f}% | "
            f"{r['representable']} ({r['rep_n']}) | {r['soundness']} ({r['sound_n']}) | {r['subset_violations']} |"
        )
        sys.stdout.flush()
    bench_models(args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
