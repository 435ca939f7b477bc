"""`extract run`: a batch job from the shell, resumable, with progress on stderr and results as JSONL.

The input is checked in full before anything is sent (a bad line stops the run with exit code 2, naming the
file and line), so no document is silently dropped and no tokens are spent on a job that cannot finish.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import shutil
import signal
import sys
from typing import Any

import orjson

from extract import _json
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
    urgent,
)
from extract.transports.encoding import PAYLOAD_SETTINGS

__all__ = ["add_parser", "handler"]

EXIT_INTERRUPTED = 130

# After Ctrl-C, how long the run gets to cancel in-flight requests before the command moves on.
_STOP_WAIT_S = 0.5

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
  OUT.jsonl.meta records the job (schema, and where the input is); a rerun resumes only its own output and
  refuses an output of another job or a file it did not write (nothing there is changed or deleted).
  OUT.jsonl.lock keeps a second run off the same output while the first runs. An output that is an input
  file is refused. If the server cannot be reached, the run stops (exit 4) and writes nothing for the
  unsent documents.

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
        "--service-tier",
        choices=("auto", "default", "flex", "priority"),
        help="the provider's service tier (flex: cheaper, may queue or be refused when busy)",
    )
    parser.add_argument(
        "--queue-threshold",
        type=int,
        metavar="MS",
        help="with --service-tier flex/auto: refuse early (retried) when the queue is longer than MS",
    )
    parser.add_argument(
        "--payload",
        choices=PAYLOAD_SETTINGS,
        default="auto",
        help="request body encoding where the provider accepts it (default auto: gzip above a few KB)",
    )
    # long documents (extract/documents/): split to the model's context window, merged by the schema
    parser.add_argument(
        "--chunking",
        choices=("auto", "off"),
        default="auto",
        help="auto: split a document longer than the model's context window; off: such a document fails",
    )
    parser.add_argument(
        "--chunk-tokens", type=int, metavar="N", help="split documents into chunks of N tokens"
    )
    parser.add_argument("--overlap-tokens", type=int, metavar="N", help="tokens consecutive chunks share")
    parser.add_argument(
        "--on-chunk-error",
        choices=("keep", "raise"),
        default="keep",
        help="keep: a failed chunk leaves its document incomplete; raise: it fails the document",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="one document only: show the value growing as the reply arrives (in place on a terminal; "
        "otherwise only the final JSON line is written)",
    )
    parser.add_argument(
        "--evidence",
        action="store_true",
        help="write each value's evidence into its output line: spans in the text, alignment, confidence",
    )
    parser.add_argument(
        "--require-grounding",
        action="store_true",
        help='re-ask when a string value does not appear in the text (fields marked "derived" are exempt)',
    )
    add_global_options(parser, suppress=True)
    parser.set_defaults(handler=handler)


def _evidence_options(args: argparse.Namespace) -> dict[str, bool]:
    """--evidence / --require-grounding as the per-document options of extract_many."""
    options = {"evidence": bool(getattr(args, "evidence", False))}
    if getattr(args, "require_grounding", False):
        options["require_grounding"] = True
    return {k: v for k, v in options.items() if v}


def _resume_command() -> str:
    return shlex.join(["extract", *sys.argv[1:]])


class _State:
    """What the interrupt message needs, filled in as the run gets further."""

    def __init__(self) -> None:
        self.run: Any | None = None


def handler(args: argparse.Namespace) -> int:
    """Ctrl-C or SIGTERM in any phase (imports, input scan, model load, requests, writing) ends here."""
    state = _State()
    try:
        return _handle(args, state)
    except KeyboardInterrupt:
        return _interrupted(args, state)


def _handle(args: argparse.Namespace, state: _State) -> int:
    from pathlib import Path

    from extract._batch._guard import Job, check_meta, check_not_input, schema_fingerprint
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
        if args.output is not None:
            # before the scan: an output that is the input must not even be read as a checkpoint
            check_not_input(Path(args.output), source.paths())
        total = source.scan()
    except SourceError as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"cannot read the input: {exc}") from None

    if getattr(args, "stream", False):
        if total != 1 or args.output is not None:
            raise BadInput(
                f"--stream shows one document as it arrives: give exactly one document (got {total}) and no "
                "--output; for many documents, run without --stream"
            )
        return _stream_one(args, schema_source, source)

    extractor = make_extractor(args)
    extractor.limiter = RateLimiter()
    # compile once up front: a schema problem is one error now, not one per document
    schema = compile_schema(schema_source, provider=extractor.profile)
    input_key = source.input_key()
    if args.output is not None:
        # an early, read-only answer (the run checks again under the output's lock)
        check_meta(Path(args.output), Job(schema_fingerprint(schema), input_key))

    quiet = bool(getattr(args, "quiet", False))
    progress = None if quiet or (args.output is None and sys.stdout.isatty()) else Progress(total=total)
    run = extract_many(
        schema,
        source,
        extractor=extractor,
        concurrency=args.concurrency,
        ordered=args.ordered,
        output=args.output,
        input_key=input_key,
        retry_failed=not args.skip_failed,
        instructions=args.instructions,
        progress=progress or False,
        total=total,
        chunking=args.chunking,
        chunk_tokens=args.chunk_tokens,
        overlap_tokens=args.overlap_tokens,
        on_chunk_error=args.on_chunk_error,
        **_evidence_options(args),
    )
    state.run = run
    noted = False
    try:
        with run:
            for outcome in run:
                if not noted and run.resumed is not None:
                    noted = _note_resume(args, run.resumed, total)
                if args.output is None:
                    sys.stdout.buffer.write(_json.dumps(outcome.to_json(), option=orjson.OPT_APPEND_NEWLINE))
                    sys.stdout.flush()
    except SourceError as exc:
        raise BadInput(str(exc)) from None
    finally:
        with contextlib.suppress(OSError):
            extractor.close()
    if not noted and run.resumed is not None:
        _note_resume(args, run.resumed, total)  # everything was done already: say so
    stats = run.stats
    note(args, stats.summary())
    if stats.total is not None and stats.completed + stats.skipped < stats.total:
        # cannot happen unless a source changed between the scan and the run
        print("extract: error: the input changed while it was read; rerun to finish", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_FAILED if stats.failed else EXIT_OK


def _stream_one(args: argparse.Namespace, schema_source: Any, source: Any) -> int:
    """`--stream`: the one document's partial values, redrawn on one terminal line; then its JSON line."""
    from extract._batch._outcome import error_json, to_jsonable, usage_json
    from extract.errors import APIError, ExtractionFailed
    from extract.results import Usage

    doc_id, text = next(iter(source))
    extractor = make_extractor(args)
    live = sys.stdout.isatty()
    line: dict[str, Any] = {"id": doc_id}
    usage = Usage()
    code = EXIT_OK
    try:
        stream = extractor.stream(schema_source, text, instructions=args.instructions)
        for item in stream:
            if live:
                shown = _json.dumps(to_jsonable(item)).decode()
                width = shutil.get_terminal_size().columns - 1
                sys.stdout.write("\r\x1b[2K" + (shown if len(shown) <= width else shown[: width - 1] + "…"))
                sys.stdout.flush()
            line["value"] = to_jsonable(item)
        if stream.result is not None:
            usage = stream.result.usage
    except (ExtractionFailed, APIError) as exc:
        line.pop("value", None)
        line["error"] = error_json(exc)
        if isinstance(exc, ExtractionFailed) and isinstance(exc.usage, Usage):
            usage = exc.usage
        code = EXIT_FAILED
    finally:
        with contextlib.suppress(OSError):
            extractor.close()
    line["usage"] = usage_json(usage)
    if live:
        sys.stdout.write("\r\x1b[2K")
    sys.stdout.buffer.write(_json.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    sys.stdout.flush()
    return code


def _interrupted(args: argparse.Namespace, state: _State) -> int:
    for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not cut the message short
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, signal.SIG_IGN)
    run = state.run
    if run is not None:
        run.close(timeout=_STOP_WAIT_S)  # in-flight work is abandoned, not waited for
        stats = run.stats
        kept = f"; finished documents are in {args.output}" if args.output else ""
        urgent(
            f"extract: interrupted after {stats.completed} documents this run ({stats.done} done, "
            f"{stats.failed} failed){kept}."
        )
    else:
        urgent("extract: interrupted before any document was sent.")
    if args.output:
        urgent(f"extract: to resume, run the same command again:\n  {_resume_command()}")
    else:
        urgent("extract: pass --output OUT.jsonl to make a run resumable.")
    return EXIT_INTERRUPTED


def _note_resume(args: argparse.Namespace, resumed: Any, total: int) -> bool:
    if resumed.lines:
        retried = (
            f", {resumed.dropped_failures} failed earlier and retried" if resumed.dropped_failures else ""
        )
        if resumed.dropped_incomplete:
            retried += f", {resumed.dropped_incomplete} left incomplete earlier and retried"
        note(args, f"resuming {args.output}: {len(resumed.done)} of {total} already done{retried}")
    return True
