"""One assigned partition: ordered dispatch, bounded concurrency per entity key, a safe commit watermark.

Records of a partition are taken in offset order. A record is started as soon as (a) it is due — a retry-tier record
carries a due time and nothing at or behind it starts earlier — and (b) no earlier record with the same ordering key
(the entity) is still running, and (c) fewer than ``max_in_flight`` records of this partition are running. Records of
different entities therefore overlap (one QBO company's backlog is not processed one call at a time), while the
events of one entity keep their order.

The commit watermark only moves over a contiguous run of finished offsets: offset N is committed only when every
record before it finished — its outcome durable — so a crash never skips a record. Waiting happens in this worker's
own task, never in the fetch loop, so a record that is not due yet holds back only its own partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["PartitionWorker", "Prepared"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class Prepared(Generic[T]):
    """A fetched record made ready for dispatch."""

    offset: int
    #: Records with the same key run one after the other, in offset order.
    key: Hashable
    #: Monotonic-clock time before which the record must not start (None: now).
    due: float | None
    item: T


class PartitionWorker(Generic[T]):
    def __init__(
        self,
        name: str,
        process: Callable[[Prepared[T]], Awaitable[None]],
        *,
        max_in_flight: int,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.name = name
        self._process = process
        self._max_in_flight = max_in_flight
        self._clock = clock or asyncio.get_running_loop().time
        self._queue: deque[Prepared[T]] = deque()
        self._order: deque[int] = deque()  # offsets started or waiting behind a key, in offset order
        self._finished: set[int] = set()
        self._chains: dict[Hashable, deque[Prepared[T]]] = {}  # key -> records waiting behind the running one
        self._running: dict[int, asyncio.Task[None]] = {}
        self._watermark: int | None = None  # next offset to commit
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self.failed: BaseException | None = None

    # ---- feeding -------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._dispatcher = asyncio.create_task(self._dispatch(), name=f"dispatch {self.name}")

    def enqueue(self, prepared: Prepared[T]) -> None:
        self._queue.append(prepared)
        self._wakeup.set()

    @property
    def backlog(self) -> int:
        """Fetched records not finished yet (back-pressure reads this)."""
        return len(self._queue) + len(self._order)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    @property
    def watermark(self) -> int | None:
        """The offset to commit (every record before it is finished), or None if nothing finished yet."""
        return self._watermark

    # ---- dispatch ------------------------------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        try:
            while not self._stopping.is_set():
                if not self._queue or len(self._running) >= self._max_in_flight:
                    self._wakeup.clear()
                    await self._wait(None)
                    continue
                head = self._queue[0]
                if head.due is not None:
                    delay = head.due - self._clock()
                    if delay > 0:
                        self._wakeup.clear()
                        await self._wait(delay)
                        continue
                self._queue.popleft()
                self._order.append(head.offset)
                chain = self._chains.get(head.key)
                if chain is not None:
                    chain.append(head)  # an earlier record of this entity is running: wait behind it
                else:
                    self._chains[head.key] = deque()
                    self._launch(head)
        except Exception as exc:  # pragma: no cover - a bug in the worker itself must not go unnoticed
            self.failed = exc
            log.exception("partition worker %s failed", self.name)
            raise

    async def _wait(self, limit: float | None) -> None:
        waiters = [asyncio.ensure_future(self._wakeup.wait()), asyncio.ensure_future(self._stopping.wait())]
        try:
            await asyncio.wait(waiters, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _launch(self, prepared: Prepared[T]) -> None:
        task = asyncio.create_task(self._run(prepared), name=f"{self.name}@{prepared.offset}")
        self._running[prepared.offset] = task

    async def _run(self, prepared: Prepared[T]) -> None:
        try:
            await self._process(prepared)
        except asyncio.CancelledError:
            # Cancelled at shutdown / revocation: not finished, so never committed; the record comes again.
            self._running.pop(prepared.offset, None)
            raise
        except Exception as exc:  # the processor records outcomes itself; reaching here is a bug
            self.failed = exc
            self._running.pop(prepared.offset, None)
            log.exception("processing %s@%s escaped the processor; the partition stops", self.name, prepared.offset)
            self._stopping.set()
            return
        self._running.pop(prepared.offset, None)
        self._finish(prepared)

    def _finish(self, prepared: Prepared[T]) -> None:
        self._finished.add(prepared.offset)
        while self._order and self._order[0] in self._finished:
            done = self._order.popleft()
            self._finished.discard(done)
            self._watermark = done + 1
        chain = self._chains.get(prepared.key)
        if chain:
            self._launch(chain.popleft())
        else:
            self._chains.pop(prepared.key, None)
        self._wakeup.set()

    # ---- stopping ------------------------------------------------------------------------------------------------
    async def stop(self, grace: float) -> int | None:
        """Stop starting records, let running ones finish for up to ``grace`` seconds, cancel the rest.

        Returns the final watermark to commit. Records not finished are not committed and will be redelivered.
        """
        self._stopping.set()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        running = list(self._running.values())
        if running:
            _done, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
                log.warning("%s: %d record(s) cancelled at stop; they will be redelivered", self.name, len(pending))
        return self._watermark
