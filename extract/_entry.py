"""The console script: signal handling starts before the CLI's own imports.

Importing the CLI (argparse, the engine, httpx) takes a few hundred milliseconds; a Ctrl-C or SIGTERM in that
window used to print a traceback or end the process silently. Here both become one quiet line and the
interrupt exit code; once `extract.cli.main` runs, its own handlers take over.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

_EXIT_INTERRUPTED = 130
_received: list[int] = []


def _note(signum: int, frame: FrameType | None) -> None:
    # Only noted: an exception raised inside a C extension's module initialisation (a signal arriving
    # mid-import) can crash the interpreter (seen: SIGSEGV). The imports take a fraction of a second, so
    # the command still stops well within one second of the signal.
    _received.append(signum)


def main() -> int:
    signal.signal(signal.SIGINT, _note)
    signal.signal(signal.SIGTERM, _note)
    from extract.cli import main as cli_main

    # hand signals back to Python's defaults (SIGINT raises KeyboardInterrupt), which the CLI builds on
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _received:
        sys.stderr.write("extract: interrupted during start-up, before any document was sent.\n")
        return _EXIT_INTERRUPTED
    return cli_main()
