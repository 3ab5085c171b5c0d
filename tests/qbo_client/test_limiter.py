"""The per-company budget with a fake clock: moving window, concurrency, batch budget, pause, bounded waits."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from qbsync.qbo import InProcessRateBudget, QboThrottledError
from tests.qbo_client.fakes import FakeClock


def budget(
    clock: FakeClock, *, limit: int = 5, batch: int = 2, in_flight: int = 10, max_wait: float = 30.0
) -> InProcessRateBudget:
    return InProcessRateBudget(
        requests_per_window=limit,
        batch_requests_per_window=batch,
        window_s=60.0,
        max_in_flight=in_flight,
        max_wait_s=max_wait,
        clock=clock,
        sleep=clock.sleep,
    )


async def run_one(limiter: InProcessRateBudget, clock: FakeClock, key: str = "realm", batch: bool = False) -> float:
    """Take a slot, note the time it was granted, release it at once. Returns the grant time."""
    async with limiter.reserve(key, batch=batch):
        return clock.now


async def test_moving_window_admits_the_limit_then_waits_for_the_oldest_completion_to_age_out() -> None:
    clock = FakeClock()
    limiter = budget(clock, limit=5)
    start = clock.now
    for i in range(5):  # five requests completing at t+0..t+4
        clock.now = start + i
        await run_one(limiter, clock)
    clock.now = start + 10
    granted = await run_one(limiter, clock)
    assert granted == start + 60  # the first completion (t+0) left the window
    granted = await run_one(limiter, clock)
    assert granted == start + 61  # then the second (t+1)
    assert clock.sleeps == [50.0, 1.0]


async def test_in_flight_requests_count_against_the_window() -> None:
    clock = FakeClock()
    limiter = budget(clock, limit=3)
    async with AsyncExitStack() as held:
        for _ in range(3):
            await held.enter_async_context(limiter.reserve("realm"))
        waiter = asyncio.create_task(run_one(limiter, clock))
        for _ in range(5):
            await asyncio.sleep(0)
        assert not waiter.done()  # all three slots are in flight; nothing has aged out
        release_time = clock.now
    # the three completions just happened: the waiter gets a slot a full window after them
    assert await waiter == release_time + 60


async def test_concurrency_cap_holds_the_eleventh_until_one_finishes() -> None:
    clock = FakeClock()
    limiter = budget(clock, limit=100, in_flight=10)
    release = asyncio.Event()
    peak = 0

    async def request() -> None:
        nonlocal peak
        async with limiter.reserve("realm"):
            peak = max(peak, limiter.in_flight("realm"))
            await release.wait()

    tasks = [asyncio.create_task(request()) for _ in range(11)]
    for _ in range(10):
        await asyncio.sleep(0)
    assert limiter.in_flight("realm") == 10
    assert peak == 10
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 10
    assert limiter.in_flight("realm") == 0
    assert clock.sleeps == []  # a concurrency wait is a wait for a release, not a timed sleep


async def test_companies_have_separate_budgets() -> None:
    clock = FakeClock()
    limiter = budget(clock, limit=1)
    first = await run_one(limiter, clock, key="A")
    other = await run_one(limiter, clock, key="B")
    assert first == other == clock.now
    assert clock.sleeps == []


async def test_batch_budget_is_separate_and_batches_count_in_both() -> None:
    clock = FakeClock()
    limiter = budget(clock, limit=5, batch=2)
    start = clock.now
    await run_one(limiter, clock, batch=True)
    await run_one(limiter, clock, batch=True)
    assert await run_one(limiter, clock) == start  # plain requests still fit (3 of 5 used)
    assert await run_one(limiter, clock, batch=True) == start + 60  # the third batch waits
    assert clock.sleeps == [60.0]


async def test_ready_waits_like_a_reservation_but_takes_nothing() -> None:
    clock = FakeClock()
    limiter = budget(clock, limit=5, batch=2)
    start = clock.now
    await limiter.ready("realm", batch=True)
    await limiter.ready("realm", batch=True)
    assert clock.now == start  # free: no wait
    assert limiter.in_flight("realm") == 0  # and no slot taken
    await run_one(limiter, clock, batch=True)
    await run_one(limiter, clock, batch=True)  # the window's two batch slots are spent
    await limiter.ready("realm")  # a plain request could still go
    assert clock.now == start
    await limiter.ready("realm", batch=True)
    assert clock.now == start + 60  # a batch could go once the first one aged out of the window
    assert await run_one(limiter, clock, batch=True) == start + 60  # and the reservation then waits no longer


async def test_headroom_is_the_share_of_the_window_still_free_in_flight_included() -> None:
    clock = FakeClock()
    limiter = budget(clock, limit=5, batch=4)
    start = clock.now
    assert limiter.headroom("realm") == 1.0
    assert limiter.headroom("realm", batch=True) == 1.0
    await run_one(limiter, clock, batch=True)
    assert limiter.headroom("realm", batch=True) == 0.75
    assert limiter.headroom("realm") == 0.8  # a batch request is a request too
    async with limiter.reserve("realm", batch=True):
        assert limiter.headroom("realm", batch=True) == 0.5  # in flight counts
        assert limiter.headroom("other", batch=True) == 1.0  # per company
    clock.now = start + 60.5  # the first batch aged out of the window; the second (completed at +0) too
    assert limiter.headroom("realm", batch=True) == 1.0


async def test_ready_gives_up_silently_at_the_bound_and_leaves_the_error_to_the_reservation() -> None:
    clock = FakeClock()
    limiter = budget(clock, in_flight=1, max_wait=0.05)
    async with limiter.reserve("realm"):
        await limiter.ready("realm")  # returns after the bound without raising
        with pytest.raises(QboThrottledError):
            async with limiter.reserve("realm"):
                pass


async def test_pause_holds_every_request_of_the_company() -> None:
    clock = FakeClock()
    limiter = budget(clock)
    await limiter.pause("realm", 12.5)
    start = clock.now
    assert await run_one(limiter, clock) == start + 12.5
    assert await run_one(limiter, clock, key="other") == start + 12.5  # other companies were not paused


async def test_waiters_are_served_in_arrival_order() -> None:
    clock = FakeClock()
    limiter = budget(clock, limit=100, in_flight=1)
    order: list[int] = []
    gate = asyncio.Event()

    async def request(n: int) -> None:
        async with limiter.reserve("realm"):
            order.append(n)
            await gate.wait()

    tasks = []
    for n in range(6):
        tasks.append(asyncio.create_task(request(n)))
        await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*tasks)
    assert order == list(range(6))


async def test_a_wait_longer_than_the_bound_raises_throttled() -> None:
    clock = FakeClock()
    limiter = budget(clock, in_flight=1, max_wait=0.05)
    async with limiter.reserve("realm"):
        with pytest.raises(QboThrottledError) as info:
            async with limiter.reserve("realm"):
                pass
    assert info.value.status is None  # local: QBO never saw it
    assert limiter.in_flight("realm") == 0


async def test_cancelled_request_releases_its_slot() -> None:
    clock = FakeClock()
    limiter = budget(clock, in_flight=1)

    async def hold() -> None:
        async with limiter.reserve("realm"):
            await asyncio.Event().wait()

    task = asyncio.create_task(hold())
    await asyncio.sleep(0)
    assert limiter.in_flight("realm") == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.in_flight("realm") == 0
    await run_one(limiter, clock)
