"""Documents longer than a model's context: split into chunks, extracted per chunk, merged by the schema.

Pure pieces (`estimate_tokens`, `split_text`, `merge_parts`, `chunk_schema`) and `run_document`, the
generator `Extractor.extract` / `aextract` drive when a document does not fit (see core.py).
"""

from __future__ import annotations

from extract.documents._merge import SCALAR_POLICIES, Part, check_policies, merge_parts, uses_policy
from extract.documents._run import (
    CHUNK_CONCURRENCY,
    MAX_RESPLITS,
    ChunkTask,
    DocumentIncomplete,
    DocumentPlan,
    drive_document_async,
    drive_document_sync,
    run_document,
)
from extract.documents._schema import chunk_schema
from extract.documents._sizes import (
    MIN_CHUNK_TOKENS,
    ChunkOptions,
    check_chunk_options,
    chunk_budget,
    plan_chunks,
)
from extract.documents._split import Chunk, split_text
from extract.documents._tokens import BYTES_PER_TOKEN, estimate_tokens, max_chars

__all__ = [
    "BYTES_PER_TOKEN",
    "CHUNK_CONCURRENCY",
    "MAX_RESPLITS",
    "MIN_CHUNK_TOKENS",
    "SCALAR_POLICIES",
    "Chunk",
    "ChunkOptions",
    "ChunkTask",
    "DocumentIncomplete",
    "DocumentPlan",
    "Part",
    "check_chunk_options",
    "check_policies",
    "chunk_budget",
    "chunk_schema",
    "drive_document_async",
    "drive_document_sync",
    "estimate_tokens",
    "max_chars",
    "merge_parts",
    "plan_chunks",
    "run_document",
    "split_text",
    "uses_policy",
]
