"""The in-place retry decision and backoff, as pure functions."""

from __future__ import annotations

import pytest

from qbsync.qbo import (
    QboAuthenticationError,
    QboServerError,
    QboStaleObjectError,
    QboThrottledError,
    QboTransportError,
    QboValidationError,
)
from qbsync.qbo.errors import QboError
from qbsync.qbo.retry import RetryPolicy, full_jitter

POLICY = RetryPolicy(read_max_attempts=4, write_max_attempts=3, initial_s=0.5, max_s=8.0, jitter=lambda d: d)


@pytest.mark.parametrize(
    ("error", "read", "write"),
    [
        (QboTransportError("reset"), True, True),
        (QboThrottledError("429", status=429), True, False),
        (QboThrottledError("local budget"), False, False),  # the local wait already hit its bound
        (QboServerError("503", status=503), True, False),
        (QboValidationError("bad", status=400), False, False),
        (QboStaleObjectError("5010", status=400), False, False),
        (QboAuthenticationError("401", status=401), False, False),
    ],
)
def test_what_is_retried_in_place(error: QboError, read: bool, write: bool) -> None:
    assert POLICY.should_retry(error, is_write=False, attempt=1) is read
    assert POLICY.should_retry(error, is_write=True, attempt=1) is write


def test_attempts_are_bounded_per_kind() -> None:
    error = QboTransportError("reset")
    assert POLICY.should_retry(error, is_write=False, attempt=3)
    assert not POLICY.should_retry(error, is_write=False, attempt=4)
    assert POLICY.should_retry(error, is_write=True, attempt=2)
    assert not POLICY.should_retry(error, is_write=True, attempt=3)


def test_backoff_is_exponential_and_capped_and_server_hint_wins_capped() -> None:
    assert [POLICY.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert POLICY.delay(1, retry_after=12.0) == 12.0
    assert POLICY.delay(1, retry_after=3600.0) == 60.0
    assert POLICY.delay(1, retry_after=-5.0) == 0.0


def test_default_jitter_stays_within_half_to_full_delay() -> None:
    samples = [full_jitter(4.0) for _ in range(500)]
    assert all(2.0 <= s <= 4.0 for s in samples)
    assert len(set(samples)) > 1
