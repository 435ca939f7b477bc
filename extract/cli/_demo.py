"""`extract demo`: one real extraction on a bundled text and schema, to show the whole path works."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from typing import Any

import orjson

from extract import _json
from extract.cli._common import (
    EXIT_CODES_HELP,
    EXIT_OK,
    add_global_options,
    local_model_label,
    make_extractor,
)

__all__ = ["add_parser", "demo_inputs", "handler"]

_SCHEMA_FILE = "contact.schema.json"
_TEXT_FILE = "contact.txt"


def demo_inputs() -> tuple[dict[str, Any], str]:
    """The bundled schema and text (shipped inside the wheel, under extract/_demo_data)."""
    folder = resources.files("extract").joinpath("_demo_data")
    schema: dict[str, Any] = orjson.loads(folder.joinpath(_SCHEMA_FILE).read_bytes())
    text = folder.joinpath(_TEXT_FILE).read_text(encoding="utf-8")
    return schema, text


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a bundled example end to end and print the JSON value",
        description=(
            "Extract a contact (name, job title, company, city) from a short bundled message and print\n"
            "the validated JSON. Runs on Cerebras when CEREBRAS_API_KEY is set, on --base-url when given,\n"
            f"else offline on the embedded model ({local_model_label()})."
        ),
        epilog="examples:\n  extract demo\n  extract demo --show-input\n\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--show-input", action="store_true", help="print the bundled text and schema on stderr first"
    )
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=handler)


def handler(args: argparse.Namespace) -> int:
    schema, text = demo_inputs()
    if args.show_input:
        print(
            f"text:\n{text}\nschema:\n{orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode()}\n",
            file=sys.stderr,
        )
    with make_extractor(args) as extractor:
        # temperature 0: the demo should print the same answer every time.
        value = extractor.extract(schema, text, temperature=0)
    sys.stdout.write(_json.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
    return EXIT_OK
