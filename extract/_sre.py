"""Python's own regex parser (`re._parser`, `sre_parse` before 3.11), for code that walks a pattern's tree:
the grammar translator of the embedded model and the test server's example generator."""

from __future__ import annotations

import importlib
import warnings
from typing import Any

__all__ = ["sre_parser"]

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        sre_parser: Any = importlib.import_module("re._parser")  # Python 3.11+
    except ImportError:  # Python 3.10
        sre_parser = importlib.import_module("sre_parse")
