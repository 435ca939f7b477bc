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


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from extract.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("extract: interrupted during start-up, before any document was sent.\n")
        return _EXIT_INTERRUPTED
    return cli_main()
