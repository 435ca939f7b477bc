"""The provider records: cerebras, openai, llamacpp, local, generic. Data only.

Figures come from the provider pages the project started from (docs: ../shared/reference); where a page
is unsure the conservative reading wins, and a wrong guess costs one demotion, never a crash.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from extract.providers._records import ModelRow, Provider
from extract.providers._signatures import ErrorSignature
from extract.schema._profiles import CEREBRAS, LLAMACPP, OPENAI

__all__ = ["DEFAULT_PROVIDER", "PROVIDERS", "REQUEST_FIELDS"]

# -- request fields ---------------------------------------------------------------------------------

_COMMON_FIELDS: Final = frozenset(
    {
        "model",
        "messages",
        "max_completion_tokens",
        "max_tokens",
        "response_format",
        "temperature",
        "top_p",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "n",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "logprobs",
        "top_logprobs",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
    }
)
_CEREBRAS_FIELDS: Final = _COMMON_FIELDS | {
    "reasoning_effort",
    "reasoning_format",
    "clear_thinking",
    "disable_reasoning",
    "prediction",
    "service_tier",
    "prompt_cache_key",
}
_OPENAI_FIELDS: Final = _COMMON_FIELDS | {
    "reasoning_effort",
    "prediction",
    "service_tier",
    "prompt_cache_key",
    "metadata",
    "store",
    "verbosity",
    "safety_identifier",
}
_LLAMACPP_FIELDS: Final = _COMMON_FIELDS | {
    "top_k",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "grammar",
    "mirostat_mode",
    "mirostat_tau",
    "mirostat_eta",
}
# Every request field the library knows, whatever the provider: a keyword outside it is a typo to report,
# not a field to send (provider fields the library does not know go through `extra_body=`).
REQUEST_FIELDS: Final = _CEREBRAS_FIELDS | _OPENAI_FIELDS | _LLAMACPP_FIELDS

# -- error signatures -------------------------------------------------------------------------------

# Cerebras and OpenAI: a 400/422 on the response_format parameter (code wrong_api_format, or a message
# naming the format), e.g. a model without strict json_schema support.
_FORMAT_REFUSED: Final = ErrorSignature(
    statuses=frozenset({400, 422}),
    codes=frozenset({"wrong_api_format"}),
    message_words=("response_format", "json_schema", "json_object"),
    params=("response_format",),
)
# llama-cpp-python's server: a 500 (or 400/422) validation error on the response_format type.
_LLAMACPP_FORMAT_REFUSED: Final = ErrorSignature(
    statuses=frozenset({400, 422, 500}),
    raw_markers=(b"Input should be 'text' or 'json_object'",),
)
_CONTEXT_TOO_LONG: Final = ErrorSignature(
    statuses=frozenset({400, 413, 422}),
    codes=frozenset({"context_length_exceeded"}),
    message_words=(
        "current length is",
        "maximum context length",
        "context window",
        "context length",
        "reduce the length of the messages",
    ),
)
_BOTH_REFUSALS: Final = (_FORMAT_REFUSED, _LLAMACPP_FORMAT_REFUSED)

# -- rows -------------------------------------------------------------------------------------------

_CEREBRAS_MODES: Final = ("json_schema", "json_object", "prompt")
_CEREBRAS_REASONING_FORMATS: Final = ("parsed", "text_parsed", "raw", "hidden", "none")
# the catch-all row; the named rows below change only what differs
_CEREBRAS_ANY: Final = ModelRow(
    "*",
    _CEREBRAS_MODES,
    max_output_tokens=16384,
    stream_modes=(
        "json_schema",
        "prompt",
    ),  # "json_object is not compatible with streaming" (cerebras-api.md)
    request_fields=_CEREBRAS_FIELDS,
    encodings=frozenset({"gzip", "msgpack"}),
    logprobs=True,
    prompt_cache_key=True,
    service_tiers=("auto", "default", "flex", "priority"),
)

CEREBRAS_PROVIDER: Final = Provider(
    name="cerebras",
    profile=CEREBRAS,
    host_suffixes=("cerebras.ai",),
    default_base_url="https://api.cerebras.ai/v1",
    default_model="gpt-oss-120b",
    key_env="CEREBRAS_API_KEY",
    base_url_env="CEREBRAS_BASE_URL",
    mode_refusals=_BOTH_REFUSALS,
    context_overflows=(_CONTEXT_TOO_LONG,),
    rows=(
        # free tier: ~65K context, ~32K output (paid: 131K / 40K); the server corrects a wrong guess
        replace(
            _CEREBRAS_ANY,
            pattern="gpt-oss-120b",
            context_window=65536,
            max_output_tokens=32768,
            reasoning=True,
            reasoning_efforts=("low", "medium", "high"),
            reasoning_formats=_CEREBRAS_REASONING_FORMATS,
            # Default effort "low", measured: `python benchmarks/bench_reasoning.py` (40 invoices on the
            # test server) gives 100% success at every effort and 127 completion tokens per success at
            # low vs 319 at medium (the server's default) and 1,087 at high; with a 512-token budget
            # high needs 3 attempts (2,623 tokens). The test server's answers do not improve with more
            # reasoning, so this prices the effort only; callers pass reasoning_effort= to raise it.
            reasoning_effort="low",
            predicted_outputs=True,
        ),
        replace(
            _CEREBRAS_ANY,
            pattern="zai-glm-*",
            context_window=65536,
            max_output_tokens=32768,
            reasoning=True,
            # the chat page lists "none" (reasoning off) as its only reasoning_effort; no effort is sent unless
            # the caller asks (its reasoning is also switched with `disable_reasoning` / `clear_thinking`)
            reasoning_efforts=("none",),
            reasoning_formats=_CEREBRAS_REASONING_FORMATS,
            predicted_outputs=True,
        ),
        replace(
            _CEREBRAS_ANY,
            pattern="qwen-3-*",
            context_window=65536,
            max_output_tokens=32768,
        ),
        replace(
            _CEREBRAS_ANY,
            pattern="llama*",
            context_window=8192,
            max_output_tokens=8192,
        ),
        _CEREBRAS_ANY,
    ),
)

_OPENAI_MODES: Final = ("json_schema", "json_object", "prompt")
_OPENAI_ANY: Final = ModelRow(
    "*",
    _OPENAI_MODES,
    max_output_tokens=16384,
    request_fields=_OPENAI_FIELDS,
    logprobs=True,
    predicted_outputs=True,
    prompt_cache_key=True,
    service_tiers=("auto", "default", "flex", "priority"),
)

OPENAI_PROVIDER: Final = Provider(
    name="openai",
    profile=OPENAI,
    host_suffixes=("openai.com",),
    default_base_url="https://api.openai.com/v1",
    key_env="OPENAI_API_KEY",
    base_url_env="OPENAI_BASE_URL",
    mode_refusals=_BOTH_REFUSALS,  # a caller may name openai for any OpenAI-compatible server
    context_overflows=(_CONTEXT_TOO_LONG,),
    rows=(
        replace(
            _OPENAI_ANY,
            pattern="o[0-9]*",
            max_output_tokens=65536,
            reasoning=True,
            reasoning_efforts=("low", "medium", "high"),
        ),
        replace(
            _OPENAI_ANY,
            pattern="gpt-5*",
            max_output_tokens=65536,
            reasoning=True,
            reasoning_efforts=("minimal", "low", "medium", "high"),
        ),
        _OPENAI_ANY,
    ),
)

# llama-cpp-python's server answers json_schema with a 500 but enforces a schema given to json_object.
LLAMACPP_PROVIDER: Final = Provider(
    name="llamacpp",
    profile=LLAMACPP,
    mode_refusals=_BOTH_REFUSALS,
    context_overflows=(_CONTEXT_TOO_LONG,),
    rows=(
        ModelRow(
            "*",
            ("json_object_schema", "json_object", "prompt"),
            max_output_tokens=4096,
            max_tokens_field="max_tokens",
            request_fields=_LLAMACPP_FIELDS,
            logprobs=True,
            logprobs_need_top=True,
        ),
    ),
)

# The embedded model: in-process, one generation at a time; a timeout is the computation itself.
LOCAL_PROVIDER: Final = Provider(
    name="local",
    profile=LLAMACPP,
    embedded=True,
    mode_refusals=_BOTH_REFUSALS,
    context_overflows=(_CONTEXT_TOO_LONG,),
    rows=(
        ModelRow(
            "*",
            ("json_object_schema", "prompt"),
            context_window=4096,
            max_output_tokens=4096,
            max_tokens_field="max_tokens",
            retry_timeouts=False,
            request_fields=_LLAMACPP_FIELDS,
            streaming=True,  # LocalTransport.stream: llama-cpp-python's token stream
            logprobs=True,  # computed per token from the sampled logits row (extract._local._logprobs)
        ),
    ),
)

# Unknown OpenAI-compatible servers: aim high with the most portable strict schema (Cerebras' subset is
# the conservative one); the engine demotes on the first refusal and remembers it. json_object_schema
# (llama.cpp's grammar-enforced form) comes next: servers that ignore the extra `schema` key still get
# the schema in the prompt, servers that refuse it demote once more to plain json_object. Nothing beyond
# plain JSON bodies and the common fields is assumed.
GENERIC_PROVIDER: Final = Provider(
    name="generic",
    profile=CEREBRAS,
    mode_refusals=_BOTH_REFUSALS,
    context_overflows=(_CONTEXT_TOO_LONG,),
    rows=(
        ModelRow(
            "*",
            ("json_schema", "json_object_schema", "json_object", "prompt"),
            max_output_tokens=16384,
            # optional features not known: explicit requests pass (within documented values), none is added
            reasoning_efforts=None,
            reasoning_formats=None,
            logprobs=None,
            predicted_outputs=None,
            prompt_cache_key=None,
            service_tiers=None,
        ),
    ),
)

PROVIDERS: Final[dict[str, Provider]] = {
    p.name: p
    for p in (CEREBRAS_PROVIDER, OPENAI_PROVIDER, LLAMACPP_PROVIDER, LOCAL_PROVIDER, GENERIC_PROVIDER)
}
# The provider whose key in the environment selects it when the caller names no backend.
DEFAULT_PROVIDER: Final = CEREBRAS_PROVIDER
