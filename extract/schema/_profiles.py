"""Provider profiles as data: what each provider's structured-output mode accepts.

The compiler and the subset checker read these fields instead of branching on provider names, so adding a
provider means adding one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

from extract.errors import ConfigurationError

__all__ = ["PROFILES", "Profile", "get_profile"]

_STRUCTURE = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "enum",
        "anyOf",
        "$ref",
    }
)
_ANNOTATION = frozenset({"description", "$defs"})
_OPENAI_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)


@dataclass(frozen=True, slots=True)
class Profile:
    """What one provider's strict json_schema mode accepts; `None` means no limit.

    `wire_constraints` are validation keywords the provider enforces itself, so the compiler may leave
    them on the wire (they are still checked client-side). Everything else moves into descriptions.
    """

    name: str
    strict_json_schema: bool
    allowed_keywords: frozenset[str]
    wire_constraints: frozenset[str] = frozenset()
    allowed_formats: frozenset[str] | None = None
    max_any_of: int | None = None
    allow_recursion: bool = False
    allow_type_lists: bool = False
    allow_prefix_items: bool = True  # else tuples travel as objects {"item_0": ..., "item_1": ...}
    max_chars: int | None = None
    max_depth: int | None = None
    max_properties: int | None = None
    max_enum_values: int | None = None
    large_enum_threshold: int = 250
    large_enum_chars: int | None = None
    # how many times a recursive definition is expanded before the rest is carried as a JSON string
    unroll_depth: int = 3


CEREBRAS = Profile(
    name="cerebras",
    strict_json_schema=True,
    allowed_keywords=_STRUCTURE | _ANNOTATION,
    max_any_of=5,
    max_chars=5000,
    max_depth=10,
    max_properties=500,
    max_enum_values=500,
    large_enum_chars=7500,
)

_OPENAI_CONSTRAINTS = frozenset(
    {
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)

OPENAI = Profile(
    name="openai",
    strict_json_schema=True,
    # OpenAI's documented subset names no prefixItems: tuples go as objects there
    allowed_keywords=(_STRUCTURE - {"prefixItems"}) | _ANNOTATION | _OPENAI_CONSTRAINTS,
    wire_constraints=_OPENAI_CONSTRAINTS,
    allowed_formats=_OPENAI_FORMATS,
    allow_recursion=True,
    allow_prefix_items=False,
    max_chars=120_000,
    max_depth=10,
    max_properties=5000,
    max_enum_values=1000,
    large_enum_chars=15_000,
)

LLAMACPP = Profile(
    name="llamacpp",
    strict_json_schema=False,
    allowed_keywords=_STRUCTURE
    | _ANNOTATION
    | _OPENAI_CONSTRAINTS
    | frozenset({"minLength", "maxLength", "const", "oneOf", "allOf", "additionalItems"}),
    wire_constraints=_OPENAI_CONSTRAINTS | frozenset({"minLength", "maxLength"}),
    allow_recursion=True,
    allow_type_lists=True,
)

GENERIC = Profile(
    name="generic",
    strict_json_schema=False,
    allowed_keywords=frozenset(),  # empty: every keyword of the normalised schema is sent as-is
    allow_recursion=True,
    allow_type_lists=True,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (CEREBRAS, OPENAI, LLAMACPP, GENERIC)}


def get_profile(profile: str | Profile) -> Profile:
    """Look a profile up by name; a `Profile` instance passes through."""
    if isinstance(profile, Profile):
        return profile
    found = PROFILES.get(profile)
    if found is None:
        raise ConfigurationError(
            f"unknown provider profile {profile!r}; use one of {sorted(PROFILES)} or pass a Profile"
        )
    return found
