"""What the emulated provider knows per model: context window, reasoning efforts, predicted outputs.

Figures follow /work/shared/reference/cerebras-api.md (paid-plan context windows: gpt-oss-120b 131K, llama3.1-8b
32K; free tiers are smaller, pass `context_windows=` to emulate them).
A model the table does not name still works (the lineup changes): it gets `_UNKNOWN`, or the reasoning row
when the server lists it among its reasoning models. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["EFFORT_TOKENS", "ModelSpec", "spec_for"]

# Reasoning tokens spent per effort: deterministic, so a client can measure what an effort costs.
EFFORT_TOKENS: dict[str, int] = {"none": 0, "low": 64, "medium": 256, "high": 1024}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    context_window: int
    reasoning: bool
    efforts: frozenset[str]  # accepted `reasoning_effort` values; empty: the field is refused
    predicted_outputs: bool
    clear_thinking: bool  # accepts `clear_thinking` (zai-glm-4.7 only, per the chat page)
    developer_role: bool = (
        True  # the chat page: the developer role "is currently only available for gpt-oss-120b"
    )


_GPT_OSS = ModelSpec(
    context_window=131_072,
    reasoning=True,
    efforts=frozenset({"low", "medium", "high"}),
    predicted_outputs=True,
    clear_thinking=False,
)
# The chat page lists "none" (disable reasoning) as the value for zai-glm-4.7.
_GLM = ModelSpec(
    context_window=131_072,
    reasoning=True,
    efforts=frozenset({"none"}),
    predicted_outputs=True,
    clear_thinking=True,
    developer_role=False,
)
_TABLE: dict[str, ModelSpec] = {
    "gpt-oss-120b": _GPT_OSS,
    "zai-glm-4.7": _GLM,
    "llama3.1-8b": ModelSpec(32_768, False, frozenset(), False, False, developer_role=False),
    "qwen-3-235b-a22b-instruct-2507": ModelSpec(
        65_536, False, frozenset(), False, False, developer_role=False
    ),
}
_UNKNOWN = ModelSpec(131_072, False, frozenset(), False, False)
_UNKNOWN_REASONING = ModelSpec(131_072, True, frozenset({"low", "medium", "high"}), False, False)


def spec_for(model: str, *, reasoning: bool, context_window: int | None = None) -> ModelSpec:
    """The row for `model`; `reasoning` is the server's say (its reasoning_models setting) and wins."""
    spec = _TABLE.get(model)
    if spec is None and model.startswith("zai-glm"):
        spec = _GLM
    if spec is None:
        spec = _UNKNOWN_REASONING if reasoning else _UNKNOWN
    if spec.reasoning != reasoning:
        efforts = _UNKNOWN_REASONING.efforts if reasoning else frozenset()
        spec = replace(spec, reasoning=reasoning, efforts=efforts)
    if context_window is not None:
        spec = replace(spec, context_window=context_window)
    return spec
