"""Prometheus metrics of the QBO client (default registry, prefix ``qbsync_qbo_``, base units).

Labels are bounded sets chosen by code - operation names, HTTP status codes, error class names - and never realm
ids, organization ids or entity ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

__all__ = [
    "AUTH_REFRESHES",
    "REQUESTS",
    "REQUEST_DURATION",
    "RETRIES",
    "THROTTLED_RESPONSES",
    "THROTTLE_WAIT",
    "status_label",
]

REQUESTS = Counter(
    "qbsync_qbo_requests_total",
    "HTTP requests sent to QBO, by operation, HTTP status ('none' when no response) and error class ('none' if ok).",
    ["operation", "status", "error"],
)
REQUEST_DURATION = Histogram(
    "qbsync_qbo_request_duration_seconds",
    "Duration of one HTTP request to QBO (one attempt), from send to the end of the response body.",
    ["operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0),
)
THROTTLE_WAIT = Histogram(
    "qbsync_qbo_throttle_wait_seconds",
    "Time a request waited for a slot in the per-company rate budget before it was sent.",
    ["kind"],
    buckets=(0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0),
)
RETRIES = Counter(
    "qbsync_qbo_retries_total",
    "In-place retries made by the client, by operation and the error class that caused them.",
    ["operation", "error"],
)
THROTTLED_RESPONSES = Counter(
    "qbsync_qbo_throttled_responses_total",
    "429 answers from QBO (each one means the budget was shared or set too high).",
    ["operation"],
)
AUTH_REFRESHES = Counter(
    "qbsync_qbo_auth_refreshes_total",
    "401 answers reported to the token provider, by outcome (refreshed, lost).",
    ["outcome"],
)


def status_label(status: int | None) -> str:
    """The status label value: the HTTP status code, or ``none`` when no response arrived."""
    return "none" if status is None else str(status)
