"""The test server's token latency model: the formula, its settings and flags, and that a completion waits for it."""

from __future__ import annotations

import math
import time
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from extract.testing import TestServer, TokenLatency
from extract.testing.__main__ import _parser, _server

pytestmark = pytest.mark.timeout(60)

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def chat(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-oss-120b",
        "reasoning_effort": "low",
        "messages": [
            {"role": "system", "content": "Extract the person as JSON."},
            {"role": "user", "content": "Ada Lovelace, 36, mathematician."},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "person", "strict": True, "schema": PERSON},
        },
    }
    body.update(overrides)
    return body


def test_each_kind_of_token_has_its_price() -> None:
    model = TokenLatency(
        prompt_token_s=0.01, cached_prompt_token_s=0.001, completion_token_s=1.0, prediction_factor=0.25
    )
    assert model.seconds(prompt_tokens=100) == pytest.approx(1.0)
    assert model.seconds(prompt_tokens=100, cached_tokens=100) == pytest.approx(0.1)
    assert model.seconds(prompt_tokens=0, completion_tokens=10) == pytest.approx(10.0)
    # 10 completion tokens of which 8 came from the prediction: 2 generated + 8 checked at a quarter
    assert model.seconds(
        prompt_tokens=0, completion_tokens=10, accepted_prediction_tokens=8
    ) == pytest.approx(4.0)
    # rejected prediction tokens were checked and thrown away: checking time only
    assert model.seconds(
        prompt_tokens=0, completion_tokens=10, rejected_prediction_tokens=4
    ) == pytest.approx(11.0)


def test_the_model_is_off_by_default_and_on_a_default_server() -> None:
    assert not TokenLatency().enabled
    assert TokenLatency().seconds(prompt_tokens=10_000, completion_tokens=10_000) == 0
    assert not TestServer().settings.token_latency.enabled


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt_token_s": -1.0},
        {"cached_prompt_token_s": math.nan},
        {"completion_token_s": -0.1},
        {"prediction_factor": 1.5},
        {"prediction_factor": -0.1},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        TokenLatency(**kwargs)


counts = st.integers(min_value=-5, max_value=5000)
prices = st.floats(min_value=0, max_value=1, allow_nan=False)


@given(
    st.builds(TokenLatency, prices, prices, prices, st.floats(min_value=0, max_value=1, allow_nan=False)),
    counts,
    counts,
    counts,
    counts,
    counts,
)
def test_time_is_never_negative_and_an_accepted_token_never_costs_more_than_a_generated_one(
    model: TokenLatency, prompt: int, cached: int, completion: int, accepted: int, rejected: int
) -> None:
    spent = model.seconds(
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=completion,
        accepted_prediction_tokens=accepted,
        rejected_prediction_tokens=rejected,
    )
    assert spent >= 0
    unpredicted = model.seconds(
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=completion,
        rejected_prediction_tokens=rejected,
    )
    assert spent <= unpredicted + 1e-9


def test_the_cli_flags_set_the_model_in_seconds() -> None:
    args = _parser().parse_args(
        [
            "--prompt-token-us",
            "10",
            "--cached-prompt-token-us",
            "1",
            "--completion-token-ms",
            "0.5",
            "--prediction-factor",
            "0.5",
        ]
    )
    model = _server(args).settings.token_latency
    assert model == TokenLatency(
        prompt_token_s=10e-6, cached_prompt_token_s=1e-6, completion_token_s=0.5e-3, prediction_factor=0.5
    )
    assert not _server(_parser().parse_args([])).settings.token_latency.enabled


def test_a_completion_takes_at_least_the_time_its_usage_costs() -> None:
    model = TokenLatency(completion_token_s=0.004)
    with TestServer(token_latency=model) as server:
        started = time.perf_counter()
        response = httpx.post(server.base_url + "/chat/completions", json=chat(), timeout=30)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    owed = model.seconds(
        prompt_tokens=usage["prompt_tokens"],
        cached_tokens=usage["prompt_tokens_details"]["cached_tokens"],
        completion_tokens=usage["completion_tokens"],
    )
    assert owed >= 0.004 * 64  # the low effort's reasoning tokens at least
    assert elapsed >= owed
