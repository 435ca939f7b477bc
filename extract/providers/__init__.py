"""Providers as data: one immutable record per provider, and `resolve()` from a configuration to one.

    from extract.providers import resolve
    resolved = resolve(base_url="https://api.cerebras.ai/v1")
    resolved.provider.profile      # the strict-schema Profile the compiler uses
    resolved.row.reasoning_efforts # what the model row allows

A record (`Provider`) holds where the provider lives and whose key it takes, its schema profile, its
model rows (`ModelRow`: modes best first, limits, the request fields and body encodings it accepts) and
the error responses that mean "mode refused" or "context too long". Engine code asks the record; it never
compares provider names.
"""

from __future__ import annotations

from extract.providers._data import DEFAULT_PROVIDER, PROVIDERS, REQUEST_FIELDS
from extract.providers._records import MODES, ModelRow, Provider
from extract.providers._resolve import Resolved, get_provider, provider_for_url, resolve
from extract.providers._signatures import (
    ContextOverflow,
    ErrorSignature,
    error_fields,
    parse_context_overflow,
)

__all__ = [
    "DEFAULT_PROVIDER",
    "MODES",
    "PROVIDERS",
    "REQUEST_FIELDS",
    "ContextOverflow",
    "ErrorSignature",
    "ModelRow",
    "Provider",
    "Resolved",
    "error_fields",
    "get_provider",
    "parse_context_overflow",
    "provider_for_url",
    "resolve",
]
