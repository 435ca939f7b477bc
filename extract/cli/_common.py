"""What every `extract` subcommand shares: exit codes, global options, reading a schema source, building
the Extractor from the options and the environment, and turning expected errors into one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from extract.errors import (
    APIError,
    ConfigurationError,
    ExtractError,
    ExtractionFailed,
    SchemaError,
    ValidationFailed,
)

if TYPE_CHECKING:
    from extract.core import Extractor

__all__ = [
    "EXIT_API",
    "EXIT_CODES_HELP",
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "LOCAL_NOTE",
    "BadInput",
    "add_global_options",
    "error_message",
    "exit_code_for",
    "load_schema_source",
    "make_extractor",
    "note",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_API = 4

EXIT_CODES_HELP = """exit codes:
  0  success
  1  extraction failed for some document (the model never produced a valid value)
  2  usage error or bad input (unknown option, missing file, invalid JSON or schema)
  3  configuration error (no API key and no local model, bad option combination)
  4  server or API error (unreachable server, bad key (401), rate limit, 5xx)"""

LOCAL_NOTE = "using the embedded local model (SmolLM2-135M); set CEREBRAS_API_KEY to use Cerebras"

# package.module:Attribute (the attribute may be dotted: module:Outer.Inner)
_MODULE_ATTR = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class BadInput(Exception):
    """Input the command cannot use (a missing file, a non-JSON schema file): exit code 2, no traceback."""


def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """The options every command takes. With suppress=True an option left out on a subcommand does not
    overwrite the same option given before the subcommand (`extract --model M demo`)."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--model",
        default=default(None),
        help="model name (default: the provider's default, e.g. gpt-oss-120b)",
    )
    group.add_argument(
        "--base-url",
        default=default(None),
        metavar="URL",
        help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 (default: Cerebras, or the embedded "
        "model when CEREBRAS_API_KEY is unset)",
    )
    group.add_argument(
        "--provider",
        default=default(None),
        help="provider: cerebras, openai, llamacpp, local, generic (default: guessed from the base URL)",
    )
    group.add_argument(
        "--debug", action="store_true", default=default(False), help="show tracebacks and debug logs"
    )
    group.add_argument(
        "--quiet", "-q", action="store_true", default=default(False), help="print only results and errors"
    )


def note(args: argparse.Namespace, message: str) -> None:
    """An informational line on stderr, silenced by --quiet."""
    if not getattr(args, "quiet", False):
        print(f"extract: {message}", file=sys.stderr)


def make_extractor(args: argparse.Namespace) -> Extractor:
    """The Extractor the global options describe.

    The key is never a command-line argument (shell history, ps): the engine reads CEREBRAS_API_KEY and
    sends it only to Cerebras or to CEREBRAS_BASE_URL. With neither a key nor --base-url it runs on the
    embedded model, and the command says so once (unless --quiet).
    """
    from extract.core import Extractor

    extractor = Extractor(
        base_url=getattr(args, "base_url", None),
        model=getattr(args, "model", None),
        provider=getattr(args, "provider", None),
        payload=getattr(args, "payload", "auto"),
    )
    if extractor.base_url == "local":
        note(args, LOCAL_NOTE)
    return extractor


def _import_attribute(source: str) -> Any:
    module_name, _, attribute = source.partition(":")
    # Like `python -m`, look in the current directory first so a project's own models are found.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise BadInput(
            f"cannot import module {module_name!r} for {source!r} ({exc}); check the name and that it is "
            "importable from the current directory or the active environment"
        ) from exc
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise BadInput(
                f"module {module_name!r} has no attribute {attribute!r}; expected package.module:Model"
            ) from None
    return value


def load_schema_source(source: str) -> Any:
    """A schema argument as compile_schema takes it: a JSON file's content, or an imported model/schema."""
    path = Path(source)
    if path.is_file():
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise BadInput(f"cannot read schema file {source}: {exc.strerror or exc}") from exc
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadInput(f"schema file {source} is not valid JSON: {exc}") from None
    if _MODULE_ATTR.match(source):
        return _import_attribute(source)
    if path.suffix or os.sep in source or "/" in source:
        raise BadInput(f"no such schema file: {source}")
    raise BadInput(f"schema {source!r} is neither a JSON file nor package.module:Model")


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code for an expected error (see EXIT_CODES_HELP)."""
    if isinstance(exc, (ExtractionFailed, ValidationFailed)):
        return EXIT_FAILED
    if isinstance(exc, (BadInput, SchemaError, OSError)):
        return EXIT_USAGE
    if isinstance(exc, ConfigurationError):
        return EXIT_CONFIG
    if isinstance(exc, APIError):
        return EXIT_API
    return EXIT_FAILED


def error_message(exc: BaseException) -> str:
    """The line printed for an expected error: its own message, which already says what to do."""
    if isinstance(exc, OSError) and not isinstance(exc, ExtractError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    text = str(exc).strip()
    return text or type(exc).__name__
