"""QBO's throttles per company + per OAuth app (facts §3): a moving window and a concurrency cap.

* at most ``requests_per_window`` (500) requests in any ``window_s`` (60 s), batch requests included;
* at most ``batch_requests_per_window`` (120) of them may be batch requests;
* at most ``concurrent_requests`` (10) in flight.

A refused request gets a 429 and does not count against the window (so a client pacing itself just under the
limit is never punished for an earlier refusal). Time comes from the emulator clock. No locks: every caller
runs on the server's single event loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

from qbo_emulator.clock import Clock
from qbo_emulator.config import LimitsConfig

__all__ = ["Limiter"]


class Limiter:
    """Admission control; ``acquire`` then (when it said yes) exactly one ``release``."""

    def __init__(self, config: LimitsConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._requests: dict[Hashable, deque[float]] = {}
        self._batches: dict[Hashable, deque[float]] = {}
        self._in_flight: dict[Hashable, int] = {}

    def acquire(self, key: Hashable, is_batch: bool = False) -> bool:
        """Admit one request for ``key`` (``(realm_id, client_id)``) or refuse it (429)."""
        if not self.config.enabled:
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
            return True
        if self._in_flight.get(key, 0) >= self.config.concurrent_requests:
            return False
        now = self._clock.timestamp()
        requests = self._window(self._requests, key, now)
        if len(requests) >= self.config.requests_per_window:
            return False
        batches = self._window(self._batches, key, now) if is_batch else None
        if batches is not None and len(batches) >= self.config.batch_requests_per_window:
            return False
        requests.append(now)
        if batches is not None:
            batches.append(now)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        return True

    def release(self, key: Hashable) -> None:
        count = self._in_flight.get(key, 0) - 1
        if count > 0:
            self._in_flight[key] = count
        else:
            self._in_flight.pop(key, None)

    def in_flight(self, key: Hashable) -> int:
        return self._in_flight.get(key, 0)

    def reset(self) -> None:
        self._requests.clear()
        self._batches.clear()

    def _window(self, windows: dict[Hashable, deque[float]], key: Hashable, now: float) -> deque[float]:
        stamps = windows.setdefault(key, deque())
        horizon = now - self.config.window_s
        while stamps and (stamps[0] <= horizon or stamps[0] > now + 1.0):
            stamps.popleft()
        return stamps
