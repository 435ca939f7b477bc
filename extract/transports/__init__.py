"""Getting one request to a server and back, split the way httpx splits it:

- `base`: the interface the engine codes against (Transport, WireRequest, WireResponse);
- `http`: the pooled httpx implementation, with a whole-call deadline and a response size cap;
- `encoding`: request body encodings (gzip, msgpack), the choice of one per body and the refusal test;
- `retry`: which failures are retried, how long to wait, and the status -> error map;
- `waits`: the one parser of every server-given wait (`retry-after`, `retry-after-ms`,
  `x-ratelimit-reset-*`), shared with `extract.ratelimit`.
"""

from extract.transports.base import StreamStart, Transport, WireRequest, WireResponse
from extract.transports.encoding import (
    PAYLOAD_SETTINGS,
    PayloadPolicy,
    PayloadSetting,
    check_payload,
    is_encoding_refusal,
)
from extract.transports.http import (
    CEREBRAS_BASE_URL,
    DEFAULT_MAX_RESPONSE_BYTES,
    HttpTransport,
    check_base_url,
)
from extract.transports.retry import (
    RetryPolicy,
    error_fields,
    error_from_response,
    retry_delay,
    should_retry,
    unreadable_reply_error,
)
from extract.transports.waits import DEFAULT_MAX_WAIT_S, RETRY_AFTER_CAP_S, parse_duration, server_wait

__all__ = [
    "CEREBRAS_BASE_URL",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_WAIT_S",
    "PAYLOAD_SETTINGS",
    "RETRY_AFTER_CAP_S",
    "HttpTransport",
    "PayloadPolicy",
    "PayloadSetting",
    "RetryPolicy",
    "StreamStart",
    "Transport",
    "WireRequest",
    "WireResponse",
    "check_base_url",
    "check_payload",
    "error_fields",
    "error_from_response",
    "is_encoding_refusal",
    "parse_duration",
    "retry_delay",
    "server_wait",
    "should_retry",
    "unreadable_reply_error",
]
