"""POST /v1/completions (text completions, seed page 002): check the body, then write a deterministic reply.

The continuation is words drawn from a small vocabulary by a hash of (seed, model, prompt): the same request
always gets the same text. Its tokens are `_tokens.tokenize` pieces, which is what `max_tokens`, `logprobs`
and `completion_tokens` count. Prompt tokens are four characters each (or one per id for a token-id prompt),
like every other prompt figure of the server.

Pure: a body in, a `TextPlan` or an error `Reply` out; `continuation(plan)` gives (tokens, finish_reason).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

import orjson

from extract.testing._requests import Rules, cache_scope, check_common, context_error, model_error, tier_error
from extract.testing._tokens import tokenize
from extract.testing._wire import Reply, client_error, estimate_tokens

__all__ = ["TextPlan", "continuation", "plan_completion", "raw_token_ids"]

_MAX_LOGPROBS = 20
_MAX_STOP = 4
_WORDS = (
    "and", "there", "was", "no", "moon", "the", "wind", "rose", "over", "a", "quiet", "town", "where",
    "every", "door", "stood", "open", "rain", "fell", "on", "old", "stone", "roads", "while", "someone",
    "waited", "by", "lamp", "light", "for", "news", "that", "never", "came",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TextPlan:
    model: str
    prompt: str
    prompt_tokens: int
    max_tokens: int | None
    logprobs: int | None  # None: no logprobs; 0: sampled token only; k: top-k per position
    stop: tuple[str, ...]
    seed: int
    stream: bool
    raw_tokens: bool
    service_tier: str | None
    cache_scope: str


def _bad(message: str, param: str) -> Reply:
    return client_error(400, message, param=param, code="wrong_api_format")


def plan_completion(body: Any, rules: Rules) -> TextPlan | Reply:
    """Accept a text-completions body as the provider would, or return its error."""
    if not isinstance(body, dict):
        return _bad("The request body must be a JSON object.", "")
    refused = (
        model_error(body, rules)
        or check_common(body, max_temperature=1.5)
        or tier_error(body.get("service_tier"), rules)
    )
    if refused is not None:
        return refused
    model: str = body["model"]
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        text, prompt_tokens = prompt, max(estimate_tokens(len(prompt)), 1)
    elif (
        isinstance(prompt, list)
        and prompt
        and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt)
    ):
        text, prompt_tokens = " ".join(map(str, prompt)), len(prompt)
    else:
        return _bad("'prompt' is required: a string or a non-empty list of token ids.", "prompt")
    if body.get("max_completion_tokens") is not None and body.get("max_tokens") is not None:
        return _bad("'max_tokens' and 'max_completion_tokens' cannot both be set.", "max_tokens")
    limit = body.get("max_tokens", body.get("max_completion_tokens"))
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        return _bad("'max_tokens' must be a positive integer.", "max_tokens")
    logprobs = body.get("logprobs")
    if logprobs is not None and (
        isinstance(logprobs, bool) or not isinstance(logprobs, int) or not 0 <= logprobs <= _MAX_LOGPROBS
    ):
        return _bad(
            f"'logprobs' must be an integer between 0 and {_MAX_LOGPROBS}; got {logprobs!r}.", "logprobs"
        )
    stop = body.get("stop")
    stops: tuple[str, ...]
    if stop is None:
        stops = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and len(stop) <= _MAX_STOP and all(isinstance(s, str) and s for s in stop):
        stops = tuple(stop)
    else:
        return _bad(f"'stop' must be a string or a list of at most {_MAX_STOP} strings.", "stop")
    refused = context_error(model, rules.spec(model), prompt_tokens, limit)
    if refused is not None:
        return refused
    key = orjson.dumps([rules.seed, model, prompt])
    return TextPlan(
        model=model,
        prompt=text,
        prompt_tokens=prompt_tokens,
        max_tokens=limit,
        logprobs=logprobs,
        stop=stops,
        seed=int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big"),
        stream=body.get("stream") is True,
        raw_tokens=body.get("return_raw_tokens") is True,
        service_tier=body.get("service_tier"),
        cache_scope=cache_scope(model, body.get("prompt_cache_key")),
    )


def continuation(plan: TextPlan) -> tuple[list[str], str]:
    """The reply's tokens and finish_reason: "stop" at its natural end or a stop sequence, "length" when cut."""
    rng = random.Random(plan.seed)
    words = [rng.choice(_WORDS) for _ in range(8 + rng.randrange(17))]
    text = " " + " ".join(words) + "."
    finish = "stop"
    for stop in plan.stop:
        at = text.find(stop)
        if at != -1:
            text = text[:at]
    tokens = tokenize(text)
    if plan.max_tokens is not None and len(tokens) > plan.max_tokens:
        tokens, finish = tokens[: plan.max_tokens], "length"
    return tokens, finish


def raw_token_ids(tokens: list[str]) -> list[int]:
    """Stable made-up ids for `return_raw_tokens` (a 200k vocabulary)."""
    return [
        int.from_bytes(hashlib.blake2b(t.encode(), digest_size=4).digest(), "big") % 200_000 for t in tokens
    ]
