"""Deterministic QBO ``requestid`` values.

QBO replays the original response when a write arrives again with the same ``requestid`` (per company), which is
what makes a redelivered event or a retried attempt safe. So the id must come from the event, not from the attempt:
``uuid5(namespace, f"{event_id}:{operation}")`` is derived once and is identical on every retry and redelivery.
"""

from __future__ import annotations

import uuid
from uuid import UUID

__all__ = [
    "BATCH_REQUEST_ID_MAX",
    "REQUEST_ID_MAX",
    "REQUEST_ID_NAMESPACE",
    "batch_chunk_request_id",
    "request_id",
    "validate_request_id",
]

REQUEST_ID_NAMESPACE = UUID("6f1f7a52-8d0e-5b8f-9a63-2f4c1b0e9d17")
REQUEST_ID_MAX = 50  # QBO's limit for a single write
BATCH_REQUEST_ID_MAX = 36  # QBO's limit when the request is a batch


def request_id(event_id: UUID, operation: str) -> str:
    """The 36-character requestid for one operation caused by one event (e.g. ``"invoice.create"``)."""
    if not operation:
        raise ValueError("operation must name what the event does, e.g. 'invoice.create'")
    return str(uuid.uuid5(REQUEST_ID_NAMESPACE, f"{event_id}:{operation}"))


def batch_chunk_request_id(prefix: str, chunk_index: int) -> str:
    """The requestid of one 30-item chunk of a batch call: stable for the same prefix and chunk position."""
    return str(uuid.uuid5(REQUEST_ID_NAMESPACE, f"{prefix}#batch-chunk-{chunk_index}"))


def validate_request_id(value: str, *, limit: int = REQUEST_ID_MAX) -> str:
    """Reject ids QBO would refuse (empty, too long, or not URL-safe) before anything is sent."""
    if not value or len(value) > limit:
        raise ValueError(f"requestid must be 1..{limit} characters, got {len(value)}")
    if not value.isascii() or not all(ch.isalnum() or ch in "-_." for ch in value):
        raise ValueError("requestid may only contain ASCII letters, digits, '-', '_' and '.'")
    return value
