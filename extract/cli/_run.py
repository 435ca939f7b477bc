"""`extract run`: a batch job from the shell, resumable, with progress on stderr and results as JSONL.

The input is checked in full before anything is sent (a bad line stops the run with exit code 2, naming the
file and line), so no document is silently dropped and no tokens are spent on a job that cannot finish.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

import orjson

from extract.cli._common import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    BadInput,
    add_global_options,
    load_schema_source,
    make_extractor,
    note,
)
from extract.transports.encoding import PAYLOAD_SETTINGS

__all__ = ["add_parser", "handler"]

EXIT_INTERRUPTED = 130

_EPILOG = f"""\
input:
  FILES            text files, one document each (id: the path); '-' reads one document from stdin
  --input F.jsonl  one {{"id": ..., "text": ...}} per line ("id" defaults to the line's position)
  --input DIR      every .txt file in DIR (id: the file name)
  --input F.csv    rows of a CSV file: --text-column (default "text"), --id-column (default: row position)

output:
  one JSON line per document: {{"id": ..., "value": {{...}}, "usage": {{...}}}}
  or {{"id": ..., "error": {{"type": ..., "message": ...}}, "usage": {{...}}}}
  With --output the file is also the checkpoint: rerunning the same command skips ids that already have
  a value there and retries those that failed (unless --skip-failed). Ctrl-C stops cleanly; rerun to resume.

examples:
  extract run schemas/invoice.json --input invoices.jsonl --output out.jsonl
  extract run schemas/contact.json mails/*.txt --concurrency 8 --ordered
  cat note.txt | extract run myapp.models:Contact -

{EXIT_CODES_HELP}
  130 interrupted (Ctrl-C); rerun the same command to resume"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="extract from many documents: concurrent, rate-limited, resumable, JSONL out",
        description="Extract SCHEMA from every document and write one JSON line per document.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("schema", metavar="SCHEMA", help="a JSON Schema file, or package.module:Model")
    parser.add_argument(
        "files", metavar="FILES", nargs="*", help="text files, one document each; '-' for stdin"
    )
    parser.add_argument(
        "--input", "-i", metavar="IN", help="IN.jsonl, a directory of .txt files, or a .csv file"
    )
    parser.add_argument("--text-column", metavar="COL", help='CSV column holding the text (default "text")')
    parser.add_argument(
        "--id-column", metavar="COL", help="CSV column holding the id (default: row position)"
    )
    parser.add_argument("--output", "-o", metavar="OUT.jsonl", help="write here (and resume from here)")
    parser.add_argument(
        "--concurrency",
        "-c",
        type=int,
        default=32,
        metavar="N",
        help="documents in flight at most (default 32)",
    )
    parser.add_argument("--ordered", action="store_true", help="emit results in input order")
    parser.add_argument(
        "--skip-failed",
        action="store_true",
        help="on rerun, do not retry ids whose earlier result is an error",
    )
    parser.add_argument("--instructions", metavar="TEXT", help="extra instructions for the model")
    parser.add_argument(
        "--payload",
        choices=PAYLOAD_SETTINGS,
        default="auto",
        help="request body encoding where the provider accepts it (default auto: gzip above a few KB)",
    )
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=handler)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """A `kill` (SIGTERM) stops the job as cleanly as Ctrl-C does."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (called from a test or an embedding program)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _resume_command() -> str:
    return shlex.join(["extract", *sys.argv[1:]])


def handler(args: argparse.Namespace) -> int:
    from extract._batch._progress import Progress
    from extract._batch._sources import SourceError, open_source
    from extract.batch import extract_many
    from extract.ratelimit import RateLimiter
    from extract.schema import compile_schema

    if args.concurrency < 1:
        raise BadInput(f"--concurrency must be at least 1, got {args.concurrency}")
    schema_source = load_schema_source(args.schema)
    try:
        source = open_source(args.files, args.input, args.text_column, args.id_column)
        total = source.scan()
    except SourceError as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"cannot read the input: {exc}") from None

    extractor = make_extractor(args)
    extractor.limiter = RateLimiter()
    # compile once up front: a schema problem is one error now, not one per document
    schema = compile_schema(schema_source, provider=extractor.profile)

    quiet = bool(getattr(args, "quiet", False))
    progress = None if quiet or (args.output is None and sys.stdout.isatty()) else Progress(total=total)
    run = extract_many(
        schema,
        source,
        extractor=extractor,
        concurrency=args.concurrency,
        ordered=args.ordered,
        output=args.output,
        retry_failed=not args.skip_failed,
        instructions=args.instructions,
        progress=progress or False,
        total=total,
    )
    interrupted = False
    try:
        with _sigterm_as_interrupt(), run:
            iterator = iter(run)
            for outcome in iterator:
                if progress is not None and run.resumed is not None and run.stats.completed == 1:
                    _note_resume(args, run.resumed, total)
                if args.output is None:
                    sys.stdout.buffer.write(orjson.dumps(outcome.to_json(), option=orjson.OPT_APPEND_NEWLINE))
                    sys.stdout.flush()
    except KeyboardInterrupt:
        interrupted = True
    except SourceError as exc:
        raise BadInput(str(exc)) from None
    finally:
        with contextlib.suppress(OSError):
            extractor.close()
    stats = run.stats
    if interrupted:
        kept = f"; finished documents are in {args.output}" if args.output else ""
        print(
            f"extract: interrupted after {stats.completed} documents this run ({stats.done} done, "
            f"{stats.failed} failed){kept}.",
            file=sys.stderr,
        )
        if args.output:
            print(f"extract: to resume, run the same command again:\n  {_resume_command()}", file=sys.stderr)
        else:
            print("extract: pass --output OUT.jsonl to make a run resumable.", file=sys.stderr)
        return EXIT_INTERRUPTED
    note(args, stats.summary())
    if stats.total is not None and stats.completed + stats.skipped < stats.total:
        # cannot happen unless a source changed between the scan and the run
        print("extract: error: the input changed while it was read; rerun to finish", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_FAILED if stats.failed else EXIT_OK


def _note_resume(args: argparse.Namespace, resumed: Any, total: int) -> None:
    if resumed.lines:
        retried = (
            f", {resumed.dropped_failures} failed earlier and retried" if resumed.dropped_failures else ""
        )
        note(args, f"resuming {args.output}: {len(resumed.done)} of {total} already done{retried}")
