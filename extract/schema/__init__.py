"""Compile a user schema (pydantic type, JSON Schema dict or file) for one provider's structured output.

    compiled = compile_schema(Invoice, provider="cerebras")
    body["response_format"] = compiled.response_format("json_schema")
    invoice = compiled.parse(reply_json)          # decode the wire shape, then validate

The wire schema is what the provider's strict mode accepts (see `strict_violations`); whatever it cannot
express is listed in `compiled.relaxations` and enforced by `validate` against the user's full schema.

Pipeline: `_load` (input -> JSON Schema) -> `_normalise` (refs -> `#/$defs/...`) -> `_transform` (wire
schema + `_codec` tree, with `_merge`, `_unions`, `_hints`) -> `_compact` (size) -> `_subset` (the rule
book) -> `_compiled.CompiledSchema`; `_compile` caches per (schema, provider); profiles in `_profiles`.
"""

from __future__ import annotations

from extract.schema._codec import Unrepresentable
from extract.schema._compile import clear_cache, compile_schema
from extract.schema._compiled import CompiledSchema
from extract.schema._options import Relaxation
from extract.schema._profiles import PROFILES, Profile
from extract.schema._subset import strict_violations

__all__ = [
    "PROFILES",
    "CompiledSchema",
    "Profile",
    "Relaxation",
    "Unrepresentable",
    "clear_cache",
    "compile_schema",
    "strict_violations",
]
