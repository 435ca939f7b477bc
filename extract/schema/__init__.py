"""Compile a user schema (pydantic type, JSON Schema dict or file) for one provider's structured-output mode."""

from __future__ import annotations

from extract.schema._codec import Unrepresentable
from extract.schema._compile import clear_cache, compile_schema
from extract.schema._compiled import CompiledSchema
from extract.schema._profiles import PROFILES, Profile
from extract.schema._subset import strict_violations
from extract.schema._transform import Relaxation

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
