"""What each server and model can do, as data: which output modes to try (best first) and a few limits.

Provider line-ups change every few months; adding a model is adding a row, not a branch. Lookups match
the model name with shell-style patterns, most specific row first, so an unknown model still gets its
provider's defaults, and a wrong guess costs one demotion (the engine falls back when a server refuses
a mode), never a crash.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "DATA",
    "MODES",
    "Capabilities",
    "capabilities",
    "default_model",
    "provider_for",
]

# Output modes, strongest guarantee first.
#   json_schema         response_format json_schema, strict: constrained decoding to the wire schema
#   json_object_schema  response_format {"type": "json_object", "schema": S} (llama.cpp enforces S with a grammar)
#   json_object         response_format json_object, the schema in the prompt
#   prompt              no response_format, the schema in the prompt, lenient parsing
MODES: Final = ("json_schema", "json_object_schema", "json_object", "prompt")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the engine may ask of one (provider, model).

    `profile` names the schema compiler's provider profile; `max_output_tokens` bounds how far a
    truncated reply's completion budget is doubled; `reasoning` says the model spends completion tokens
    thinking before it answers (so a tight budget ends in finish_reason "length"); `max_tokens_field` is
    the request field that budget goes in (llama-cpp-python's server only reads `max_tokens`);
    `retry_timeouts` is False where a timeout is the computation itself (the embedded model), not a
    network fault, so sending the same request again would only repeat it.
    """

    modes: tuple[str, ...]
    profile: str
    max_output_tokens: int = 16384
    reasoning: bool = False
    max_tokens_field: str = "max_completion_tokens"
    retry_timeouts: bool = True


_CEREBRAS: Final = ("json_schema", "json_object", "prompt")

# (provider, model pattern) -> capabilities. Patterns are matched with fnmatch, most specific first.
DATA: Final[dict[tuple[str, str], Capabilities]] = {
    ("cerebras", "gpt-oss-120b"): Capabilities(_CEREBRAS, "cerebras", 32768, reasoning=True),
    ("cerebras", "zai-glm-*"): Capabilities(_CEREBRAS, "cerebras", 32768, reasoning=True),
    ("cerebras", "qwen-3-*"): Capabilities(_CEREBRAS, "cerebras", 32768),
    ("cerebras", "llama*"): Capabilities(_CEREBRAS, "cerebras", 8192),
    ("cerebras", "*"): Capabilities(_CEREBRAS, "cerebras", 16384),
    ("openai", "o[0-9]*"): Capabilities(("json_schema", "json_object", "prompt"), "openai", 65536, True),
    ("openai", "gpt-5*"): Capabilities(("json_schema", "json_object", "prompt"), "openai", 65536, True),
    ("openai", "*"): Capabilities(("json_schema", "json_object", "prompt"), "openai", 16384),
    # llama-cpp-python's server answers json_schema with a 500 but enforces a schema given to json_object.
    ("llamacpp", "*"): Capabilities(
        ("json_object_schema", "json_object", "prompt"), "llamacpp", 4096, max_tokens_field="max_tokens"
    ),
    ("local", "*"): Capabilities(
        ("json_object_schema", "prompt"),
        "llamacpp",
        4096,
        max_tokens_field="max_tokens",
        retry_timeouts=False,
    ),
    # Unknown OpenAI-compatible servers: aim high with the most portable strict schema (Cerebras' subset is
    # the conservative one); the engine demotes on the first refusal and remembers it. json_object_schema
    # (llama.cpp's grammar-enforced form) comes next: servers that ignore the extra `schema` key still get
    # the schema in the prompt, servers that refuse it demote once more to plain json_object.
    ("generic", "*"): Capabilities(
        ("json_schema", "json_object_schema", "json_object", "prompt"), "cerebras", 16384
    ),
}

_DEFAULT_MODELS: Final[dict[str, str]] = {"cerebras": "gpt-oss-120b"}

_HOSTS: Final[tuple[tuple[str, str], ...]] = (
    ("cerebras.ai", "cerebras"),
    ("openai.com", "openai"),
)


def provider_for(base_url: str) -> str:
    """Guess the provider from a base URL; anything unrecognised is 'generic'."""
    host = (urlsplit(base_url).hostname or "").lower()
    for suffix, provider in _HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return provider
    return "generic"


def default_model(provider: str) -> str | None:
    """The model used when the caller names none, if the provider has an obvious one."""
    return _DEFAULT_MODELS.get(provider)


def _specificity(pattern: str) -> tuple[int, int]:
    wildcards = sum(pattern.count(c) for c in "*?[")
    return (-wildcards, len(pattern))


def capabilities(provider: str, model: str) -> Capabilities:
    """The most specific row for (provider, model), falling back to the generic row."""
    rows = [
        (pattern, caps)
        for (prov, pattern), caps in DATA.items()
        if prov == provider and fnmatch.fnmatchcase(model, pattern)
    ]
    if not rows:
        return DATA[("generic", "*")]
    rows.sort(key=lambda row: _specificity(row[0]), reverse=True)
    return rows[0][1]
