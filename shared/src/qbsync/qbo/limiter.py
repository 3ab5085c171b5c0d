"""Per-company rate budget: stay under QBO's limits instead of bouncing off them.

QBO allows 500 requests per minute and 10 in flight per realm and app, and (from late 2025) 120 batch requests per
minute; excess gets a 429. The client asks a :class:`RateBudget` for a slot before every request. The in-process
:class:`InProcessRateBudget` is the default; a cross-process implementation (e.g. backed by the database or Redis,
so all services share one company's budget) can replace it later by implementing the same protocol.

How the moving window is counted, and why it is safe: a request occupies the window from the moment it is admitted
until ``window_s`` after its response arrived (while in flight it counts too). QBO counts a request when it
*arrives*, which is somewhere between our send and our receipt. For any request R, every request QBO saw within
``window_s`` before R's arrival had either not yet completed when R was admitted, or completed less than
``window_s`` before R was admitted - so it was counted when R was admitted. Admitting only while the count is under
the limit therefore keeps QBO's own count under the limit too, whatever the latency, without clock agreement.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from qbsync.qbo.config import QboClientSettings
from qbsync.qbo.errors import QboThrottledError

__all__ = ["Clock", "InProcessRateBudget", "RateBudget", "Reservation", "Sleep"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Reservation:
    """A granted slot. ``waited_s`` is how long the caller was held back (recorded as throttle wait)."""

    waited_s: float


class RateBudget(Protocol):
    """Grants request slots per company key (the realm id). Implementations must bound every wait."""

    def reserve(self, key: str, *, batch: bool = False) -> AbstractAsyncContextManager[Reservation]:
        """Wait for a slot, hold it for the duration of the ``async with`` block (the request), then release it.

        Raises :class:`QboThrottledError` when no slot could be had within the implementation's bound.
        """
        ...

    async def pause(self, key: str, seconds: float) -> None:
        """Admit nothing for ``key`` for ``seconds`` (after QBO answered 429: someone else used the budget)."""
        ...

    async def ready(self, key: str, *, batch: bool = False) -> None:
        """Wait until a ``reserve`` would be admitted at once, taking nothing; bounded like ``reserve``.

        For callers that compose a request from work still arriving (a micro-batch): waiting here *before* composing
        means the request leaves with everything that arrived while the budget was spent. Returning is a hint, not a
        grant — the ``reserve`` that follows may still wait a little if something else took the slot meanwhile.
        """
        ...

    def headroom(self, key: str, *, batch: bool = False) -> float:
        """The share of the window's slots (``batch``: batch slots) free right now, 0.0-1.0; takes nothing.

        For callers that decide whether to spend a slot on a partial request now or let it fill (the micro-batcher
        paces partial batches once most of the burst is spent).
        """
        ...


@dataclass
class _Company:
    admission: asyncio.Lock = field(default_factory=asyncio.Lock)  # FIFO: the head waiter holds it
    released: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0
    in_flight_batch: int = 0
    done: deque[float] = field(default_factory=deque)  # completion times still inside the window
    done_batch: deque[float] = field(default_factory=deque)
    pause_until: float = 0.0


class InProcessRateBudget(RateBudget):
    """The moving-window + concurrency limiter for one process (see the module docstring for the window rule)."""

    def __init__(
        self,
        *,
        requests_per_window: int,
        batch_requests_per_window: int,
        window_s: float,
        max_in_flight: int,
        max_wait_s: float,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if min(requests_per_window, batch_requests_per_window, max_in_flight) < 1 or window_s <= 0:
            raise ValueError("limits must be positive")
        self._limit = requests_per_window
        self._batch_limit = batch_requests_per_window
        self._window = window_s
        self._max_in_flight = max_in_flight
        self._max_wait = max_wait_s
        self._clock = clock
        self._sleep = sleep
        self._companies: dict[str, _Company] = {}

    @classmethod
    def from_settings(
        cls, settings: QboClientSettings, *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> InProcessRateBudget:
        return cls(
            requests_per_window=settings.requests_per_window,
            batch_requests_per_window=settings.batch_requests_per_window,
            window_s=settings.window_s,
            max_in_flight=settings.max_in_flight,
            max_wait_s=settings.limiter_max_wait_s,
            clock=clock,
            sleep=sleep,
        )

    def reserve(self, key: str, *, batch: bool = False) -> AbstractAsyncContextManager[Reservation]:
        return self._reserve(key, batch)

    async def pause(self, key: str, seconds: float) -> None:
        company = self._company(key)
        company.pause_until = max(company.pause_until, self._clock() + max(0.0, seconds))

    async def ready(self, key: str, *, batch: bool = False) -> None:
        company = self._company(key)
        with contextlib.suppress(TimeoutError):  # the reserve that follows applies (and reports) the bound
            async with asyncio.timeout(self._max_wait):
                await self._wait_for_slot(company, batch)

    def headroom(self, key: str, *, batch: bool = False) -> float:
        company = self._company(key)
        self._expire(company, self._clock())
        if batch:
            used, limit = company.in_flight_batch + len(company.done_batch), self._batch_limit
        else:
            used, limit = company.in_flight + len(company.done), self._limit
        return max(0.0, 1.0 - used / limit)

    def in_flight(self, key: str) -> int:
        """Requests currently holding a slot for ``key`` (for tests and diagnostics)."""
        return self._company(key).in_flight

    @asynccontextmanager
    async def _reserve(self, key: str, batch: bool) -> AsyncIterator[Reservation]:
        company = self._company(key)
        started = self._clock()
        try:
            async with asyncio.timeout(self._max_wait), company.admission:
                await self._admit(company, batch)
        except TimeoutError:
            raise QboThrottledError(
                f"no QBO request slot for this company within {self._max_wait:g}s (local budget)"
            ) from None
        try:
            yield Reservation(waited_s=max(0.0, self._clock() - started))
        finally:
            self._release(company, batch)

    async def _admit(self, company: _Company, batch: bool) -> None:
        """Wait (holding the admission lock, so waiters are served in order) until a slot is free, then take it."""
        await self._wait_for_slot(company, batch)
        company.in_flight += 1  # no await since the slot was seen free: nobody took it in between
        company.in_flight_batch += int(batch)

    async def _wait_for_slot(self, company: _Company, batch: bool) -> None:
        """Return (without awaiting after the last check) once a request could be admitted now."""
        while True:
            now = self._clock()
            self._expire(company, now)
            if now < company.pause_until:
                await self._sleep(company.pause_until - now)
                continue
            wait = self._window_wait(company.in_flight, company.done, self._limit, now)
            if batch and wait == 0.0:
                wait = self._window_wait(company.in_flight_batch, company.done_batch, self._batch_limit, now)
            if company.in_flight >= self._max_in_flight or wait is None:
                company.released.clear()  # no await between the check above and this wait: no lost wake-up
                await company.released.wait()
                continue
            if wait > 0.0:
                await self._sleep(wait)
                continue
            return

    def _window_wait(self, in_flight: int, done: deque[float], limit: int, now: float) -> float | None:
        """0.0 if a slot is free, else seconds until the oldest completion leaves the window, else ``None``
        (every slot is held by a request still in flight: only a release can help)."""
        if in_flight + len(done) < limit:
            return 0.0
        if not done:
            return None
        return max(done[0] + self._window - now, 1e-3)

    def _release(self, company: _Company, batch: bool) -> None:
        now = self._clock()
        company.in_flight -= 1
        company.done.append(now)
        if batch:
            company.in_flight_batch -= 1
            company.done_batch.append(now)
        company.released.set()

    def _expire(self, company: _Company, now: float) -> None:
        horizon = now - self._window
        for done in (company.done, company.done_batch):
            while done and done[0] <= horizon:
                done.popleft()

    def _company(self, key: str) -> _Company:
        company = self._companies.get(key)
        if company is None:
            company = self._companies[key] = _Company()
        return company
