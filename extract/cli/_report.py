"""`extract report OUT.jsonl --input IN.jsonl -o report.html`: review a batch run with --evidence."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson

from extract.cli._common import EXIT_OK, BadInput, add_global_options

__all__ = ["add_parser", "handler"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="one HTML page to review a batch run with --evidence",
        description=(
            "Read the output of `extract run --evidence` and its input, and write one self-contained HTML\n"
            "page: each document's text with its values highlighted, least confident documents first."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("output_file", metavar="OUT.jsonl", help="the output of extract run --evidence")
    parser.add_argument(
        "--input", required=True, metavar="IN", help="the run's input (IN.jsonl, DIR, file.csv)"
    )
    parser.add_argument("--text-column", metavar="COL", help='CSV column holding the text (default "text")')
    parser.add_argument("--id-column", metavar="COL", help="CSV column holding the id")
    parser.add_argument("-o", "--out", required=True, metavar="report.html", help="where to write the page")
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    from extract._batch._sources import SourceError, open_source
    from extract.evidence._report import batch_report, evidence_from_json

    found: dict[str, dict[str, object]] = {}
    try:
        with open(args.output_file, "rb") as fh:
            for number, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    line = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise BadInput(f"{args.output_file}:{number}: not a JSON line") from None
                if isinstance(line, dict) and isinstance(line.get("evidence"), dict):
                    found[str(line.get("id"))] = line["evidence"]
    except OSError as exc:
        raise BadInput(f"cannot read {args.output_file}: {exc}") from None
    if not found:
        raise BadInput(f"{args.output_file} has no evidence: run `extract run --evidence` to write it")
    try:
        source = open_source([], args.input, args.text_column, args.id_column)
        documents = [
            (str(doc_id), text, evidence_from_json(found[str(doc_id)]))
            for doc_id, text in source
            if str(doc_id) in found
        ]
    except SourceError as exc:
        raise BadInput(str(exc)) from None
    Path(args.out).write_text(batch_report(documents), encoding="utf-8")
    return EXIT_OK
