"""In-place retry policy: which failures the client retries itself, and how long it waits between tries.

In place means inside one client call, before the service sees anything. It is deliberately narrow:

* reads (GET, query, CDC) retry transport errors, 429 and 5xx — repeating a read has no effect on the books;
* writes retry **only transport errors**, with the same ``requestid``, because QBO replays the original response
  for a repeated id, so the outcome the service finally sees is the one QBO recorded. A 429 or 5xx on a write is
  raised to the service's retry ladder (retry topics), which keeps the consumer moving for other companies.

Backoff is exponential, capped, with "full jitter"; a server hint (``Retry-After``) wins over the computed delay,
capped too. The jitter function is injected so tests can pin it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from qbsync.qbo.config import QboClientSettings
from qbsync.qbo.errors import QboError, QboServerError, QboThrottledError, QboTransportError

__all__ = ["Jitter", "RetryPolicy", "full_jitter"]

Jitter = Callable[[float], float]


def full_jitter(delay: float) -> float:
    """A uniformly random delay in ``[delay / 2, delay]``: spreads retries without collapsing them to zero."""
    return random.uniform(delay / 2, delay)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: ``read_max_attempts`` / ``write_max_attempts`` count the first try too."""

    read_max_attempts: int = 4
    write_max_attempts: int = 3
    initial_s: float = 0.5
    multiplier: float = 2.0
    max_s: float = 20.0
    retry_after_max_s: float = 60.0
    jitter: Jitter = field(default=full_jitter, compare=False)

    @classmethod
    def from_settings(cls, settings: QboClientSettings, *, jitter: Jitter = full_jitter) -> RetryPolicy:
        return cls(
            read_max_attempts=settings.read_max_attempts,
            write_max_attempts=settings.write_max_attempts,
            initial_s=settings.backoff_initial_s,
            multiplier=settings.backoff_multiplier,
            max_s=settings.backoff_max_s,
            retry_after_max_s=settings.retry_after_max_s,
            jitter=jitter,
        )

    def should_retry(self, error: QboError, *, is_write: bool, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (1-based) that failed with ``error`` is followed by another."""
        if attempt >= (self.write_max_attempts if is_write else self.read_max_attempts):
            return False
        if isinstance(error, QboTransportError):
            return True
        if isinstance(error, QboThrottledError) and error.status is None:
            return False  # the local budget already waited its full bound
        return not is_write and isinstance(error, QboThrottledError | QboServerError)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt``: the server's hint if any, else jittered backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max_s)
        base = min(self.max_s, self.initial_s * self.multiplier ** (attempt - 1))
        return min(self.max_s, max(0.0, self.jitter(base)))
