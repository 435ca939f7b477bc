"""extract: turn text into validated, typed data with an LLM.

    from extract import extract
    invoice = extract(Invoice, text)

The public names live in private modules and are loaded on first use, so ``import extract`` stays cheap
(the CLI and batch workers start fast, and pandas or llama.cpp load only when asked for).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from extract.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ContextLengthError,
    ExtractError,
    ExtractionFailed,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseTooLargeError,
    SchemaError,
    ServerError,
    UngroundedRequired,
    UnknownOptionError,
    UnreadableResponseError,
    Unrepresentable,
    ValidationFailed,
    Violation,
)

if TYPE_CHECKING:
    from extract.batch import BatchStats, Outcome, aextract_many, extract_many
    from extract.core import Extractor, aextract, astream, extract, stream
    from extract.documents import DocumentIncomplete
    from extract.evaluation import evaluate
    from extract.evidence import FieldEvidence
    from extract.frame import extract_frame
    from extract.ratelimit import RateLimiter
    from extract.results import Attempt, ChunkReport, Disagreement, Result, Usage
    from extract.schema import CompiledSchema, Relaxation, compile_schema, strict_violations
    from extract.streaming import AsyncPartialStream, PartialStream

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "compile_schema": "extract.schema",
    "CompiledSchema": "extract.schema",
    "Relaxation": "extract.schema",
    "strict_violations": "extract.schema",
    "extract": "extract.core",
    "aextract": "extract.core",
    "Extractor": "extract.core",
    "stream": "extract.core",
    "astream": "extract.core",
    "PartialStream": "extract.streaming",
    "AsyncPartialStream": "extract.streaming",
    "Result": "extract.results",
    "FieldEvidence": "extract.evidence",
    "evaluate": "extract.evaluation",
    "Attempt": "extract.results",
    "Usage": "extract.results",
    "ChunkReport": "extract.results",
    "Disagreement": "extract.results",
    "DocumentIncomplete": "extract.documents",
    "extract_many": "extract.batch",
    "aextract_many": "extract.batch",
    "Outcome": "extract.batch",
    "BatchStats": "extract.batch",
    "RateLimiter": "extract.ratelimit",
    "extract_frame": "extract.frame",
}

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncPartialStream",
    "Attempt",
    "AuthenticationError",
    "BadRequestError",
    "BatchStats",
    "ChunkReport",
    "CompiledSchema",
    "ConfigurationError",
    "ContextLengthError",
    "Disagreement",
    "DocumentIncomplete",
    "ExtractError",
    "ExtractionFailed",
    "Extractor",
    "FieldEvidence",
    "InputError",
    "NotFoundError",
    "Outcome",
    "PartialStream",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimiter",
    "Relaxation",
    "ResponseTooLargeError",
    "Result",
    "SchemaError",
    "ServerError",
    "UngroundedRequired",
    "UnknownOptionError",
    "UnreadableResponseError",
    "Unrepresentable",
    "Usage",
    "ValidationFailed",
    "Violation",
    "__version__",
    "aextract",
    "aextract_many",
    "astream",
    "compile_schema",
    "evaluate",
    "extract",
    "extract_frame",
    "extract_many",
    "stream",
    "strict_violations",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'extract' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
