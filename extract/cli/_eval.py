"""`extract eval SCHEMA GOLD.jsonl [--input IN] [--evidence] [-o report.html]`: score extractions against
gold values and print per-field precision, recall and F1, exact match, grounding and calibration."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from extract.cli._common import EXIT_OK, BadInput, add_global_options, load_schema_source, make_extractor

__all__ = ["add_parser", "handler"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="measure extraction quality against gold values",
        description=(
            "Extract every document of GOLD.jsonl and compare with its gold value, per field.\n"
            'Each line: {"id": ..., "gold": {...}, "text": "..."}; with --input the texts come from the\n'
            "run's input instead, matched by id. Prints a table (per-field precision, recall, F1; exact\n"
            "match; with --evidence also grounding rate, ECE and AUROC of confidence)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("schema", metavar="SCHEMA", help="a JSON Schema file or package.module:Model")
    parser.add_argument("gold_file", metavar="GOLD.jsonl", help="gold values, one JSON object a line")
    parser.add_argument("--input", metavar="IN", help="the texts (IN.jsonl, DIR, file.csv), matched by id")
    parser.add_argument("--text-column", metavar="COL", help='CSV column holding the text (default "text")')
    parser.add_argument("--id-column", metavar="COL", help="CSV column holding the id")
    parser.add_argument(
        "--evidence", action="store_true", help="ask for spans and confidences: grounding and calibration"
    )
    parser.add_argument("--require-grounding", action="store_true", help="re-ask values not in the text")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON ('-' for stdout)")
    parser.add_argument("-o", "--out", metavar="report.html", help="with --evidence: the HTML review page")
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=handler)


def _gold_lines(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with open(path, "rb") as fh:
            for number, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    line = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise BadInput(f"{path}:{number}: not a JSON line") from None
                if not isinstance(line, dict) or "gold" not in line:
                    raise BadInput(f'{path}:{number}: expected an object with "gold" (and "text" or "id")')
                yield number, line
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror or exc}") from None


def _examples(args: argparse.Namespace) -> list[dict[str, Any]]:
    lines = list(_gold_lines(args.gold_file))
    texts: dict[str, str] = {}
    if args.input is not None:
        from extract._batch._sources import SourceError, open_source

        try:
            texts = {
                str(doc_id): text
                for doc_id, text in open_source([], args.input, args.text_column, args.id_column)
            }
        except SourceError as exc:
            raise BadInput(str(exc)) from None
    examples = []
    for number, line in lines:
        doc_id = str(line.get("id", number))
        text = texts.get(doc_id) if args.input is not None else line.get("text")
        if not isinstance(text, str):
            where = f"no document with id {doc_id!r} in {args.input}" if args.input else 'no "text"'
            raise BadInput(f"{args.gold_file}:{number}: {where}")
        examples.append({"id": doc_id, "text": text, "gold": line["gold"]})
    return examples


def handler(args: argparse.Namespace) -> int:
    from extract.evaluation import run_examples, score
    from extract.evidence._report import batch_report
    from extract.schema import compile_schema

    if args.out is not None and not args.evidence:
        raise BadInput("-o/--out writes the evidence page: add --evidence")
    schema_source = load_schema_source(args.schema)
    examples = _examples(args)
    extractor = make_extractor(args)
    with extractor:
        compiled = compile_schema(schema_source, provider=extractor.profile)
        options = {"require_grounding": True} if args.require_grounding else {}
        found = run_examples(compiled, examples, extractor=extractor, evidence=args.evidence, **options)
    report = score(compiled.user_schema, found)
    if args.json == "-":
        sys.stdout.write(report.to_json() + "\n")
    else:
        print(report.table())
        if args.json is not None:
            Path(args.json).write_text(report.to_json() + "\n", encoding="utf-8")
    if args.out is not None:
        pages = [(o.id or "", o.text or "", o.evidence) for o in found if o.evidence is not None]
        Path(args.out).write_text(batch_report(pages), encoding="utf-8")
    return EXIT_OK
