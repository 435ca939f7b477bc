"""The retry policy and the status -> error map, as pure functions (no server needed)."""

from __future__ import annotations

import email.utils
import math
import random

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from extract.errors import (
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from extract.transports import (
    RETRY_AFTER_CAP_S,
    RetryPolicy,
    WireResponse,
    error_fields,
    error_from_response,
    retry_delay,
    should_retry,
    unreadable_reply_error,
)

POLICY = RetryPolicy(rng=random.Random(7))


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 599])
def test_transient_statuses_are_retried(status: int) -> None:
    assert should_retry(status, {})


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(status: int) -> None:
    assert not should_retry(status, {})


def test_connection_errors_are_retried() -> None:
    assert should_retry(None, {})


def test_x_should_retry_overrides_the_status() -> None:
    assert should_retry(400, {"x-should-retry": "true"})
    assert not should_retry(503, {"x-should-retry": "false"})
    assert not should_retry(None, {"x-should-retry": "false"})


@given(st.integers(min_value=0, max_value=30))
def test_backoff_is_jittered_exponential_and_capped(n: int) -> None:
    delay = retry_delay(n, 503, {}, POLICY)
    ceiling = min(0.5 * 2**n, 8.0)
    assert 0.75 * ceiling <= delay <= ceiling


def test_retry_after_ms_wins_over_retry_after() -> None:
    assert retry_delay(0, 429, {"retry-after-ms": "250", "retry-after": "9"}, POLICY) == pytest.approx(0.25)


def test_retry_after_seconds() -> None:
    assert retry_delay(3, 503, {"retry-after": "2"}, POLICY) == pytest.approx(2.0)


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 5, usegmt=True)
    assert retry_delay(0, 429, {"retry-after": date}, POLICY, now=now) == pytest.approx(5.0, abs=1.0)


@given(st.floats(min_value=60.0, max_value=1e9, allow_nan=False))
def test_retry_after_is_capped(seconds: float) -> None:
    assert retry_delay(0, 429, {"retry-after": repr(seconds)}, POLICY) == RETRY_AFTER_CAP_S


def test_garbage_retry_after_falls_back_to_backoff() -> None:
    delay = retry_delay(1, 503, {"retry-after": "soon", "retry-after-ms": "-3"}, POLICY)
    assert 0.75 <= delay <= 1.0


def test_ratelimit_reset_of_the_exhausted_bucket_is_honoured_on_429() -> None:
    headers = {
        "x-ratelimit-remaining-tokens-minute": "0",
        "x-ratelimit-reset-tokens-minute": "12.5",
        "x-ratelimit-remaining-requests-day": "900",
        "x-ratelimit-reset-requests-day": "40000",
    }
    assert retry_delay(0, 429, headers, POLICY) == pytest.approx(12.5)
    # The same headers on a 503 are not a reason to wait for a bucket.
    assert retry_delay(0, 503, headers, POLICY) <= 0.5


def test_ratelimit_reset_without_remaining_uses_the_smallest_reset() -> None:
    headers = {"x-ratelimit-reset-tokens-minute": "3", "x-ratelimit-reset-requests-day": "4000"}
    assert retry_delay(0, 429, headers, POLICY) == pytest.approx(3.0)


def _response(status: int, data: object) -> WireResponse:
    body = orjson.dumps(data)
    return WireResponse(status, {"content-type": "application/json"}, body, data)


@pytest.mark.parametrize(
    ("status", "cls", "advice"),
    [
        (400, BadRequestError, "parameters"),
        (401, AuthenticationError, "CEREBRAS_API_KEY"),
        (403, PermissionDeniedError, "model"),
        (404, NotFoundError, "base_url"),
        (408, APITimeoutError, "timeout"),
        (422, BadRequestError, "schema"),
        (429, RateLimitError, "limiter"),
        (500, ServerError, "later"),
        (503, ServerError, "later"),
    ],
)
def test_status_maps_to_the_error_class_with_advice(status: int, cls: type, advice: str) -> None:
    flat = {"message": "nope here", "type": "invalid_request_error", "param": "model", "code": "bad_thing"}
    error = error_from_response(_response(status, flat))
    assert type(error) is cls
    assert error.status_code == status
    assert (error.code, error.type, error.param, error.server_message) == (
        "bad_thing",
        "invalid_request_error",
        "model",
        "nope here",
    )
    assert "nope here" in str(error) and advice in str(error)


def test_envelope_shape_is_read() -> None:
    envelope = {
        "status_code": 500,
        "error": {"message": "boom", "type": "server_error", "param": "", "code": ""},
    }
    error = error_from_response(_response(500, envelope))
    assert error.server_message == "boom" and error.type == "server_error"
    assert error.param is None and error.code is None


def test_non_json_body_becomes_the_message() -> None:
    error = error_from_response(
        WireResponse(502, {"content-type": "text/html"}, b"<h1>bad gateway</h1>", None)
    )
    assert isinstance(error, ServerError) and error.server_message == "<h1>bad gateway</h1>"


def test_secrets_are_redacted_from_server_text() -> None:
    key = "sk-CANARY-0123456789"
    error = error_from_response(_response(401, {"message": f"key {key} is wrong"}), secrets=(key,))
    for text in (str(error), repr(error), error.server_message or "", str(error.body)):
        assert key not in text


@given(
    st.recursive(
        st.none() | st.booleans() | st.text() | st.integers(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_error_fields_never_fails_on_odd_bodies(data: object) -> None:
    fields = error_fields(data)
    assert all(v is None or isinstance(v, str) for v in fields.values())


_HEADER_TEXT = st.one_of(
    st.text(max_size=80),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(
        ["1e308", "-1e308", "nan", "inf", "-0", "Wed, 21 Oct 2099 07:28:00 GMT", "6m0s", "9" * 400]
    ),
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "retry-after",
                "retry-after-ms",
                "x-ratelimit-reset-tokens-minute",
                "x-ratelimit-reset-requests-day",
            ]
        ),
        _HEADER_TEXT,
    ),
    st.sampled_from([429, 503, None]),
    st.floats(min_value=0.0, max_value=600.0),
)
def test_any_server_wait_is_finite_and_capped(
    headers: dict[str, str], status: int | None, cap: float
) -> None:
    policy = RetryPolicy(rng=random.Random(1), max_server_wait=cap)
    delay = retry_delay(5, status, headers, policy)
    assert math.isfinite(delay) and 0.0 <= delay <= max(cap, policy.max_delay)


@pytest.mark.parametrize("value", ["999999", "1e308", "Wed, 21 Oct 2099 07:28:00 GMT", "1000000s"])
def test_huge_waits_are_capped_at_the_configured_cap(value: str) -> None:
    policy = RetryPolicy(rng=random.Random(1), max_server_wait=3.0)
    assert retry_delay(0, 429, {"retry-after": value}, policy) == 3.0
    assert retry_delay(0, 429, {"retry-after-ms": value.replace("s", "")}, policy) <= 3.0


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "-inf", "soon", "", "9" * 400, "1e400"])
def test_unusable_waits_fall_back_to_backoff(value: str) -> None:
    assert retry_delay(0, 429, {"retry-after": value}, POLICY) <= 0.5


def test_a_past_http_date_means_no_wait() -> None:
    assert retry_delay(0, 429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, POLICY) == 0.0


def test_go_durations_are_read_in_retry_after() -> None:
    assert retry_delay(0, 429, {"retry-after": "1.5s"}, POLICY) == pytest.approx(1.5)


@pytest.mark.parametrize("cap", [-1.0, math.nan, math.inf])
def test_a_bad_cap_is_a_configuration_error(cap: float) -> None:
    with pytest.raises(ConfigurationError, match="max_server_wait"):
        RetryPolicy(max_server_wait=cap)


def test_every_field_of_an_error_is_redacted() -> None:
    key = "sk-CANARY-0123456789"
    data = {
        "message": f"m {key}",
        "type": f"t {key}",
        "param": f"p {key}",
        "code": f"c {key}",
        "x": [{"y": key}],
    }
    response = WireResponse(
        400, {"content-type": "application/json", "x-echo": key}, orjson.dumps(data), data
    )
    error = error_from_response(response, secrets=(key,))
    for text in (
        str(error),
        repr(error),
        error.code,
        error.type,
        error.param,
        error.server_message,
        error.body,
    ):
        assert text and key not in text and "***" in text
    assert error.headers is not None and error.headers["x-echo"] == "***"


def test_nested_bodies_are_redacted_structurally() -> None:
    key = "sk-CANARY-0123456789"
    error = APIError("x", body={key: [key, (f"a{key}b",), {"k": key}], "n": 3}, secrets=(key,))
    assert error.body == {"***": ["***", ("a***b",), {"k": "***"}], "n": 3}


def test_unreadable_reply_error_names_status_type_and_excerpt() -> None:
    body = b"<html>\n<title>502 from the proxy</title>\x00\x01" + b"x" * 500
    error = unreadable_reply_error(WireResponse(200, {"content-type": "text/html"}, body, None))
    message = str(error)
    assert "HTTP 200" in message and "text/html" in message and "502 from the proxy" in message
    assert "\x00" not in message and "\n" not in message and len(message) < 600


_KEYS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=8, max_size=40
)


@given(
    _KEYS,
    st.recursive(
        st.text(max_size=20) | st.integers(min_value=-(2**53), max_value=2**53) | st.none(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    ),
)
def test_no_attribute_of_an_error_holds_the_key(key: str, noise: object) -> None:
    """Whatever shape the server's body has, the key it echoes is in no attribute of the error."""
    data = {"message": f"x{key}y", "type": key, "param": [key], "code": {"k": key}, "noise": [noise, key]}
    response = WireResponse(400, {"x-echo": key}, orjson.dumps(data), data)
    error = error_from_response(response, secrets=(key,))

    def strings(value: object) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict):
            return [s for k, v in value.items() for s in strings(k) + strings(v)]
        if isinstance(value, (list, tuple)):
            return [s for v in value for s in strings(v)]
        return []

    texts = [str(error), repr(error), *strings(vars(error)), *strings(error.args)]
    assert not [t for t in texts if key in t]
