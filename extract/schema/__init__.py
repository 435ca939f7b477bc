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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from extract.schema._codec import Unrepresentable
    from extract.schema._compile import clear_cache, compile_schema
    from extract.schema._compiled import CompiledSchema
    from extract.schema._options import Relaxation
    from extract.schema._profiles import PROFILES, Profile
    from extract.schema._subset import strict_violations

# Names load on first use: the provider records import `_profiles` (plain data) at `import extract.core`,
# which must not pull in jsonschema and the whole compiler before a schema is compiled.
_LAZY: dict[str, str] = {
    "Unrepresentable": "extract.schema._codec",
    "clear_cache": "extract.schema._compile",
    "compile_schema": "extract.schema._compile",
    "CompiledSchema": "extract.schema._compiled",
    "Relaxation": "extract.schema._options",
    "PROFILES": "extract.schema._profiles",
    "Profile": "extract.schema._profiles",
    "strict_violations": "extract.schema._subset",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'extract.schema' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
