"""Record headers: the contract, decoding, and the retry / dead-letter context.

All header values are UTF-8 text (binary headers break FastStream-based and most other consumers). Inbound records
carry ``content-type`` and ``event-type``; retry and dead-letter records add the ``qbsync-*`` context below, like
Spring Kafka's ``kafka_dlt-*`` and Kafka Connect's ``__connect.errors.*`` headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "CONTENT_TYPE",
    "EVENT_TYPE",
    "HeaderError",
    "Headers",
    "RetryContext",
    "decode_headers",
    "encode_headers",
    "format_time",
    "parse_time",
]

CONTENT_TYPE = "content-type"
EVENT_TYPE = "event-type"
JSON = "application/json"

ORIGINAL_TOPIC = "qbsync-original-topic"
ORIGINAL_PARTITION = "qbsync-original-partition"
ORIGINAL_OFFSET = "qbsync-original-offset"
ORIGINAL_TIMESTAMP = "qbsync-original-timestamp"
ATTEMPT = "qbsync-attempt"
FIRST_FAILURE_AT = "qbsync-first-failure-at"
DUE_AT = "qbsync-due-at"
ERROR_CLASS = "qbsync-error-class"
ERROR_CODE = "qbsync-error-code"
ERROR_MESSAGE = "qbsync-error-message"
EXCEPTION_TYPE = "qbsync-exception-type"
CONSUMER_GROUP = "qbsync-consumer-group"
SERVICE = "qbsync-service"
FAILED_AT = "qbsync-failed-at"
RESUMED_FROM_PARK = "qbsync-resumed-from-park"
#: Set by an operator's replay (``qbsync dlq replay`` / ``qbsync retry``) and carried along the ladder: a replayed
#: event's results get new ids (a replay that fails again must not look like the earlier failure to Batchly).
REPLAYED_AT = "qbsync-replayed-at"
REPLAYED_FROM = "qbsync-replayed-from"

QBSYNC_PREFIX = "qbsync-"
MAX_HEADER_VALUE = 4_000

Headers = dict[str, str]


class HeaderError(ValueError):
    """Headers that cannot be read (not UTF-8, duplicated, malformed qbsync context)."""


def decode_headers(raw: Sequence[tuple[str, bytes | None]] | None) -> Headers:
    """Kafka headers -> ``{name: text}``. Raises ``HeaderError`` for null, non-UTF-8 or repeated headers."""
    headers: Headers = {}
    for name, value in raw or ():
        if value is None:
            raise HeaderError(f"header {name!r} has a null value")
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            raise HeaderError(f"header {name!r} is not UTF-8 text") from None
        key = name.lower()
        if key in headers:
            raise HeaderError(f"header {name!r} appears more than once")
        headers[key] = text
    return headers


def encode_headers(headers: Headers) -> list[tuple[str, bytes]]:
    return [(name, _clip(value).encode("utf-8")) for name, value in headers.items()]


def format_time(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds, e.g. ``2026-11-24T10:00:00.000Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("time without a timezone")
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class RetryContext:
    """Where a record came from and how far it is on the ladder (read from a retry-tier record's headers)."""

    original_topic: str
    original_partition: int
    original_offset: int
    attempt: int
    first_failure_at: datetime
    due_at: datetime

    @classmethod
    def from_headers(cls, headers: Headers) -> RetryContext | None:
        """None for a first delivery (no qbsync context); raises ``HeaderError`` if the context is damaged."""
        if ATTEMPT not in headers:
            return None
        try:
            return cls(
                original_topic=headers[ORIGINAL_TOPIC],
                original_partition=int(headers[ORIGINAL_PARTITION]),
                original_offset=int(headers[ORIGINAL_OFFSET]),
                attempt=int(headers[ATTEMPT]),
                first_failure_at=parse_time(headers[FIRST_FAILURE_AT]),
                due_at=parse_time(headers[DUE_AT]),
            )
        except (KeyError, ValueError) as exc:
            raise HeaderError(f"damaged qbsync retry headers: {exc}") from None


def without_qbsync_context(headers: Headers) -> Headers:
    """The producer's own headers (content-type, event-type, tracing, ...) without our ladder context."""
    return {k: v for k, v in headers.items() if not k.startswith(QBSYNC_PREFIX)}


def merge(*parts: Headers | Iterable[tuple[str, str]]) -> Headers:
    merged: Headers = {}
    for part in parts:
        merged.update(part)
    return merged


def _clip(value: str) -> str:
    if len(value) <= MAX_HEADER_VALUE:
        return value
    return value[: MAX_HEADER_VALUE - 1] + "…"
