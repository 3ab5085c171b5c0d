"""Batchly's side of the broker during a benchmark: publish the events, watch the results come back.

* :func:`publish` sends pre-built events as fast as the producer takes them, or paced at a rate; a paced event is
  stamped with the moment it is sent (``occurred_at``), which is where its sync latency starts.
* :class:`ResultCollector` reads ``qbsync.sync-results`` from the beginning in the background and keeps, per source
  event, the first terminal result and when it arrived here — the moment Batchly would learn the outcome.
* :func:`wait_consumed` waits until a consumer group has read a topic to its end (a service learnt what it needed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from qbsync.contracts.envelope import AnyEnvelope
from qbsync.runtime import headers as h
from qbsync.runtime.kafka import OutboundRecord, record_for
from qbsync.topics import QBSYNC_SYNC_RESULTS

__all__ = ["Result", "ResultCollector", "publish", "wait_consumed"]

TERMINAL = frozenset({"SyncCompleted", "SyncFailed"})


async def publish(
    bootstrap: str,
    prefix: str,
    events: Sequence[AnyEnvelope],
    *,
    rate_per_s: float | None = None,
    on_sent: Callable[[AnyEnvelope], None] | None = None,
) -> float:
    """Publish ``events`` in order (keyed by organization); returns the wall time the first one was sent.

    With ``rate_per_s`` the events are paced and each is re-stamped with ``occurred_at`` = the moment it is sent.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5, acks="all", max_batch_size=256 * 1024
    )
    await producer.start()
    started = time.time()
    try:
        futures: list[asyncio.Future[Any]] = []
        clock = asyncio.get_running_loop().time
        origin = clock()
        for index, event in enumerate(events):
            if rate_per_s is not None:
                delay = origin + index / rate_per_s - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                event = event.model_copy(update={"occurred_at": datetime.now(UTC)})
            if on_sent is not None:
                on_sent(event)
            futures.append(await _send(producer, prefix, record_for(event)))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return started


async def _send(producer: AIOKafkaProducer, prefix: str, record: OutboundRecord) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = await producer.send(
        prefix + record.topic, record.value, key=record.key, headers=h.encode_headers(record.headers)
    )
    return future


@dataclass(frozen=True, slots=True)
class Result:
    """The first terminal result of one source event, as Batchly received it."""

    event_type: str
    source_event_type: str
    service: str
    received_at: float  # wall clock (time.time()) when it arrived here
    action: str | None
    error_class: str | None


@dataclass
class ResultCollector:
    """Background reader of ``qbsync.sync-results`` (from the start of the topic, no consumer group)."""

    bootstrap: str
    prefix: str
    results: dict[UUID, Result] = field(default_factory=dict)
    received: int = 0
    #: Terminal results beyond the first for one source event (every event must end in exactly one outcome).
    duplicates: int = 0
    _task: asyncio.Task[None] | None = None
    _consumer: AIOKafkaConsumer | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> Self:
        consumer = AIOKafkaConsumer(
            self.prefix + QBSYNC_SYNC_RESULTS,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_bytes=16 * 1024 * 1024,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer), name="bench result collector")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:  # stopped here: a task cancelled before it ran has no finally to run
            await self._consumer.stop()

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=5_000)
            now = time.time()
            for records in batch.values():
                for record in records:
                    self._take(json.loads(record.value or b"{}"), now)
            if batch:
                self._changed.set()

    def _take(self, document: dict[str, Any], now: float) -> None:
        self.received += 1
        event_type = document.get("event_type")
        if event_type not in TERMINAL:
            return
        payload = document["payload"]
        source = UUID(payload["source_event_id"])
        if source in self.results:
            self.duplicates += 1
            return
        self.results[source] = Result(
            event_type=str(event_type),
            source_event_type=str(payload["source_event_type"]),
            service=str(payload["service"]),
            received_at=now,
            action=payload.get("action"),
            error_class=payload.get("error_class"),
        )

    def done(self, event_ids: Collection[UUID]) -> int:
        return sum(1 for event_id in event_ids if event_id in self.results)

    async def wait_for(self, event_ids: Collection[UUID], *, timeout_s: float, what: str = "events") -> None:
        """Until every one of ``event_ids`` has a terminal result; a clear error (how many are missing) if not."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.done(event_ids) < len(event_ids):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                missing = len(event_ids) - self.done(event_ids)
                raise TimeoutError(f"{missing} of {len(event_ids)} {what} have no result after {timeout_s:g}s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))


async def wait_consumed(bootstrap: str, group: str, topics: Sequence[str], *, timeout_s: float) -> None:
    """Until ``group`` has committed every partition of ``topics`` (full names) up to the current end."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await admin.start()
    await probe.start()
    try:
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in sorted(probe.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            await probe.topics()  # metadata not loaded yet
            partitions = [
                TopicPartition(topic, p) for topic in topics for p in sorted(probe.partitions_for_topic(topic) or ())
            ]
        ends = await probe.end_offsets(partitions)
        deadline = time.monotonic() + timeout_s
        while True:
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            behind = {tp: end for tp, end in ends.items() if end > 0 and _offset(committed.get(tp)) < end}
            if not behind:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"group {group} is still behind on {len(behind)} partition(s) after {timeout_s:g}s")
            await asyncio.sleep(0.25)
    finally:
        await probe.stop()
        await admin.close()


def _offset(meta: Any) -> int:
    return -1 if meta is None else int(meta.offset)
