"""compile_schema: the schema package's entry point, cached per (schema, provider)."""

from __future__ import annotations

from typing import Any

from extract.schema._cache import LRU, cache_key
from extract.schema._compiled import CompiledSchema, build
from extract.schema._load import load
from extract.schema._profiles import PROFILES, Profile, get_profile

__all__ = ["clear_cache", "compile_schema"]

_CACHE: LRU[CompiledSchema] = LRU(maxsize=512)


def compile_schema(schema: Any, provider: str | Profile = "cerebras") -> CompiledSchema:
    """Compile a pydantic type, JSON Schema dict or .json path for `provider`'s structured output.

    Raises SchemaError for a malformed or unusable schema (naming where); any well-formed schema compiles,
    to a strict wire schema when one fits the provider's limits, else to a non-strict one for json_object
    mode (see `CompiledSchema.relaxations` for what moved client-side and why).
    """
    profile = get_profile(provider)
    if isinstance(schema, CompiledSchema):
        if schema.provider == profile.name:
            return schema
        schema = schema._source.pydantic_type or schema.user_schema
    # registered profiles are keyed by name: hashing a frozen dataclass on every call costs more
    key = cache_key(schema, profile.name if PROFILES.get(profile.name) is profile else profile)
    if key is not None:
        found = _CACHE.get(key)
        if found is not None:
            return found
    compiled = build(load(schema), profile)
    if key is not None:
        _CACHE.put(key, compiled)
    return compiled


def clear_cache() -> None:
    """Forget every compiled schema (tests and benchmarks measure cold compiles with it)."""
    _CACHE.clear()
