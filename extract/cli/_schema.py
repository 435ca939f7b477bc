"""`extract schema`: show exactly what a provider will be sent for a schema, and what had to give way.

The wire schema goes to stdout as JSON (pipeable); the relaxations, which the library still enforces by
validating every reply, go to stderr unless --json puts everything in one document on stdout.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

import orjson

from extract.cli._common import EXIT_CODES_HELP, EXIT_OK, add_global_options, load_schema_source

if TYPE_CHECKING:
    from extract.schema._profiles import Profile

__all__ = ["add_parser", "handler"]

_DEFAULT_PROVIDER = "cerebras"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print the wire schema sent to the provider, and the relaxations",
        description=(
            "Compile a schema for a provider's strict structured-output mode and print the wire schema\n"
            "(stdout). Keywords the provider cannot enforce are listed as relaxations (stderr): extract\n"
            "still checks them on every reply."
        ),
        epilog="examples:\n  extract schema schemas/invoice.json\n  extract schema myapp.models:Invoice "
        "--provider openai\n  extract schema contact.json --json | jq .relaxations\n\n" + EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", metavar="SOURCE", help="a JSON Schema file, or package.module:Model")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document {provider, profile, strict, name, wire_schema, relaxations} on stdout",
    )
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=handler)


def _dump(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _profile(args: argparse.Namespace) -> tuple[str, Profile]:
    """(provider, compiler profile) as the engine would pick them: --provider, else what --base-url
    points at, else Cerebras; the profile is that provider record's."""
    from extract.providers import resolve

    named = args.provider or (None if args.base_url else _DEFAULT_PROVIDER)
    record = resolve(provider=named, base_url=args.base_url, model=args.model).provider
    return record.name, record.profile


def handler(args: argparse.Namespace) -> int:
    from extract.schema import compile_schema

    schema = load_schema_source(args.source)
    provider, profile = _profile(args)
    compiled = compile_schema(schema, provider=profile)
    relaxations = [{"path": r.path, "keyword": r.keyword, "reason": r.reason} for r in compiled.relaxations]
    if args.json:
        document = {
            "provider": provider,
            "profile": compiled.provider,
            "strict": compiled.strict,
            "name": compiled.name,
            "wire_schema": compiled.wire_schema,
            "relaxations": relaxations,
        }
        sys.stdout.write(_dump(document) + "\n")
        return EXIT_OK
    sys.stdout.write(_dump(compiled.wire_schema) + "\n")
    if not args.quiet:
        mode = "strict" if compiled.strict else "not strict"
        target = provider if provider == compiled.provider else f"{provider} (profile {compiled.provider})"
        if relaxations:
            print(
                f"extract: {len(relaxations)} relaxation(s) for {target} ({mode}); "
                "each is still checked when validating replies:",
                file=sys.stderr,
            )
            for r in relaxations:
                print(f"  {r['path'] or '#'}  {r['keyword']}: {r['reason']}", file=sys.stderr)
        else:
            print(f"extract: no relaxations for {target} ({mode})", file=sys.stderr)
    return EXIT_OK
