"""What every `extract` subcommand shares: exit codes, global options, reading a schema source, building
the Extractor from the options and the environment, and turning expected errors into one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import sys
from collections.abc import Iterator
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
    "cli_wording",
    "error_message",
    "exit_code_for",
    "keep_stderr",
    "load_schema_source",
    "local_model_label",
    "local_note",
    "make_extractor",
    "note",
    "urgent",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_API = 4

EXIT_CODES_HELP = """exit codes:
  0  success
  1  extraction failed for some document (the model never produced a valid value)
  2  usage error or bad input (unknown option, missing file, invalid JSON or schema, an output file
     that is in use, belongs to another job or is the input)
  3  configuration error (no API key and no local model, bad option combination)
  4  server or API error (unreachable server, bad key (401), rate limit, 5xx)"""

_LOCAL_NOTE = "using the embedded local model ({model}); set CEREBRAS_API_KEY to use Cerebras"
LOCAL_NOTE = _LOCAL_NOTE.format(model="SmolLM2-135M")  # the note with the bundled model

# Library wording -> command-line wording, for messages the library writes for Python callers.
_CLI_WORDING = (
    (re.compile(r"pass model='\.\.\.'"), "pass --model NAME"),
    (re.compile(r"\bmodel='([^']*)'"), r"--model \1"),
    (re.compile(r"\bbase_url=(?=[\s,;)'\"]|$)"), "--base-url"),
    (re.compile(r"\bbase_url\b"), "--base-url"),
    (re.compile(r"\bprovider=(?=[\s,;)'\"]|$)"), "--provider"),
    (re.compile(r"\bconcurrency\b(?= must)"), "--concurrency"),
    (re.compile(r"\boutput=(?=[\s,;)'\"]|$)"), "--output"),
    (re.compile(r"\bretry_failed=False\b"), "--skip-failed"),
    (re.compile(r"\btimeout=(?=[\s,;)'\"]|$)"), "--timeout"),
)

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
        "--timeout",
        type=_seconds,
        default=default(None),
        metavar="SECONDS",
        help="give up on one request after this long (default 60)",
    )
    group.add_argument(
        "--debug", action="store_true", default=default(False), help="show tracebacks and debug logs"
    )
    group.add_argument(
        "--quiet", "-q", action="store_true", default=default(False), help="print only results and errors"
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (a number), got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


class _StartStderr:
    """stderr as it was when the command started. A library may silence output while it works (llama.cpp
    swaps sys.stderr and fd 2 for /dev/null while it loads a model); a message that must be seen, like the
    resume hint after Ctrl-C, goes to the original stream instead."""

    stream: Any = None
    fd: int | None = None


@contextlib.contextmanager
def keep_stderr() -> Iterator[None]:
    """Remember the command's stderr (the stream and a copy of its descriptor) for `urgent`."""
    previous = (_StartStderr.stream, _StartStderr.fd)
    _StartStderr.stream = sys.stderr
    try:
        _StartStderr.fd = os.dup(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):  # a stderr without a descriptor (captured, in a test)
        _StartStderr.fd = None
    try:
        yield
    finally:
        if _StartStderr.fd is not None:
            with contextlib.suppress(OSError):
                os.close(_StartStderr.fd)
        _StartStderr.stream, _StartStderr.fd = previous


def urgent(text: str) -> None:
    """One line on stderr that nothing may swallow (see `_StartStderr`)."""
    start, fd = _StartStderr.stream, _StartStderr.fd
    if start is None or sys.stderr is start or fd is None:
        print(text, file=sys.stderr, flush=True)
        return
    with contextlib.suppress(OSError):
        os.write(fd, (text + "\n").encode("utf-8", "replace"))


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

    base_url = getattr(args, "base_url", None)
    model = getattr(args, "model", None)
    if base_url is not None and model is None:
        _require_model(base_url, getattr(args, "provider", None))
    timeout = getattr(args, "timeout", None)
    extractor = Extractor(
        base_url=base_url,
        model=model,
        provider=getattr(args, "provider", None),
        **({} if timeout is None else {"timeout": timeout}),
        **{k: v for k in ("service_tier", "queue_threshold") if (v := getattr(args, k, None)) is not None},
        payload=getattr(args, "payload", "auto"),
    )
    if extractor.in_process:
        note(args, local_note())
    return extractor


def _require_model(base_url: str, provider: str | None) -> None:
    """A server without a default model needs --model: say so in command-line words, before any request."""
    from extract.providers import resolve

    if resolve(provider=provider, base_url=base_url).model is None:
        raise ConfigurationError(
            f"no model given for {base_url}: pass --model NAME (the name the server lists at "
            f"{base_url.rstrip('/')}/models)"
        )


def local_note() -> str:
    """The one line saying the embedded model runs, naming the model file actually used."""
    return _LOCAL_NOTE.format(model=local_model_label())


def local_model_label() -> str:
    """The embedded model as the user knows it: the GGUF file EXTRACT_LOCAL_MODEL names, else SmolLM2."""
    override = os.environ.get("EXTRACT_LOCAL_MODEL")
    if override:
        return f"{Path(override).expanduser().name}, from EXTRACT_LOCAL_MODEL"
    return "SmolLM2-135M"


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
    from extract._batch._guard import OutputRefused

    if isinstance(exc, (BadInput, SchemaError, OSError, OutputRefused)):
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
    text = cli_wording(str(exc).strip())
    return text or type(exc).__name__


def cli_wording(text: str) -> str:
    """Rewrite the Python argument names a library message may use as the matching command-line options."""
    for pattern, replacement in _CLI_WORDING:
        text = pattern.sub(replacement, text)
    return text
