"""`python -m extract` is the `extract` command."""

from __future__ import annotations

import sys

from extract._entry import main

if __name__ == "__main__":
    sys.exit(main())
