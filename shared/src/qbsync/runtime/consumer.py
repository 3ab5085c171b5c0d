"""The consumer runtime of a service: one consumer group over its topics and its own retry tiers.

* A fetch loop that never blocks on handlers: records go to per-partition workers; a partition whose backlog grows
  past ``max_buffered_per_partition`` is paused (back-pressure) and resumed when it drains.
* Manual commits: a committer task commits each partition's watermark (every record before it has a durable
  outcome) every ``commit_interval_ms``; revocation and shutdown commit what finished and drop the rest.
* Graceful shutdown: stop fetching, let in-flight records finish for ``shutdown_grace_seconds`` (then cancel — they
  are redelivered), commit, leave the group.
* Parked records are resumed when their organization reconnects (``QboConnected``) and by a periodic sweep.

Why not a FastStream subscriber: its manual ack commits every position of the consumer at once, it processes one
record at a time per consumer, and it has no delayed redelivery — so a record waiting for its retry tier would block
the other partitions of that consumer, and one company's backlog could not overlap its QBO latency. This runtime keeps
FastStream's model (typed handlers, pydantic contracts) and adds the delivery guarantees (see docs/runtime.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from sqlalchemy import select

from qbsync.contracts.outbound import QboConnected, QboConnectionLost
from qbsync.persistence.database import Database
from qbsync.persistence.tables import connection_status, parked_records
from qbsync.runtime import headers as h
from qbsync.runtime import ledger, metrics
from qbsync.runtime.handlers import HandlerContext, HandlerRegistry, Recorded
from qbsync.runtime.kafka import OutboundRecord, Publisher, client_options
from qbsync.runtime.partition import PartitionWorker
from qbsync.runtime.processor import Delivery, ProcessorHooks, RecordProcessor
from qbsync.settings import KafkaSettings, RuntimeSettings
from qbsync.topics import QBSYNC_CONNECTIONS, retry_topic, service_topics

__all__ = ["ConsumerRuntime"]

log = logging.getLogger("qbsync.runtime")


class ConsumerRuntime:
    def __init__(
        self,
        *,
        service: str,
        registry: HandlerRegistry,
        db: Database,
        publisher: Publisher,
        kafka: KafkaSettings,
        settings: RuntimeSettings,
        topics: Iterable[str] | None = None,
        group: str | None = None,
        resources: Any = None,
        track_connections: bool = True,
        direction: str = "push",
        park_sweep_interval_seconds: float = 30.0,
        hooks: ProcessorHooks | None = None,
    ) -> None:
        self.service = service
        #: The logical group (the database's key for parked records); Kafka's group id adds the topic prefix.
        self.group = group or f"qbsync.{service}"
        self.kafka_group = publisher.topic_prefix + self.group
        self.settings = settings
        self.kafka = kafka
        self.db = db
        self.publisher = publisher
        main_topics = tuple(topics) if topics is not None else service_topics(service)
        if track_connections:
            # Sync services remember each organization's QBO connection (from token-manager's events), park the
            # work of a lost one, and resume it on reconnect.
            if QBSYNC_CONNECTIONS not in main_topics:
                main_topics = (*main_topics, QBSYNC_CONNECTIONS)
            registry.register(QboConnected, self._on_connected, needs_connection=False)
            registry.register(QboConnectionLost, self._on_connection_lost, needs_connection=False)
        self.topics = (*main_topics, *(retry_topic(service, t) for t in range(1, settings.max_attempts)))
        self.processor = RecordProcessor(
            service=service,
            group=self.group,
            registry=registry,
            db=db,
            publisher=publisher,
            settings=settings,
            resources=resources,
            park_when_disconnected=track_connections,
            direction=direction,
            hooks=hooks,
        )
        self._sweep_interval = park_sweep_interval_seconds
        self._workers: dict[TopicPartition, PartitionWorker[Delivery]] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._paused: set[TopicPartition] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._rebalance_lock = asyncio.Lock()
        self.running = False
        self.failure: BaseException | None = None

    # ---- lifecycle -----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            **client_options(self.kafka, self.service),
            # The prefix isolates environments on one cluster: their groups must differ as their topics do.
            group_id=self.kafka_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.kafka.session_timeout_ms,
            heartbeat_interval_ms=self.kafka.heartbeat_interval_ms,
            max_poll_interval_ms=self.kafka.max_poll_interval_ms,
            isolation_level="read_committed",
        )
        prefix = self.publisher.topic_prefix
        self._consumer.subscribe([prefix + t for t in self.topics], listener=_Listener(self))
        await self._consumer.start()
        self.running = True
        self._tasks = [
            asyncio.create_task(self._fetch_loop(), name=f"{self.service} fetch"),
            asyncio.create_task(self._commit_loop(), name=f"{self.service} commit"),
            asyncio.create_task(self._sweep_loop(), name=f"{self.service} park sweep"),
        ]
        log.info("%s consuming %s as group %s", self.service, ", ".join(self.topics), self.group)

    async def stop(self) -> None:
        """Graceful stop: no new records, in-flight ones finish (bounded), finished offsets committed."""
        if not self.running:
            return
        self.running = False
        self._stopping.set()
        self.processor.stopping.set()  # durable steps that hit an outage now give up: their records come again
        fetch, committer, sweeper = self._tasks
        fetch.cancel()
        sweeper.cancel()
        await asyncio.gather(fetch, sweeper, return_exceptions=True)
        async with self._rebalance_lock:
            await self._stop_workers(list(self._workers))
        committer.cancel()
        await asyncio.gather(committer, return_exceptions=True)
        if self._consumer is not None:
            try:
                await self._consumer.stop()
            except KafkaError as exc:
                log.warning("%s: leaving the consumer group failed: %s", self.service, exc)
        log.info("%s consumer stopped", self.service)

    async def wait(self) -> None:
        """Return when the runtime gives up on its own (a worker or the fetch loop failed; see ``failure``)."""
        await self._stopping.wait()

    @property
    def assigned(self) -> list[TopicPartition]:
        return list(self._workers)

    # ---- fetch ---------------------------------------------------------------------------------------------------
    async def _fetch_loop(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        try:
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=500)
                for tp, records in batch.items():
                    worker = self._workers.get(tp)
                    if worker is None:  # revoked while the fetch was in flight; the new owner will read them
                        continue
                    for record in records:
                        worker.enqueue(self.processor.prepare(record))
                self._apply_backpressure(consumer)
                failed = next((w for w in self._workers.values() if w.failed is not None), None)
                if failed is not None:
                    self.failure = failed.failed
                    log.critical("%s: partition worker %s failed; stopping the consumer", self.service, failed.name)
                    self._stopping.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failure = exc
            log.critical("%s: fetch loop failed: %s", self.service, exc, exc_info=True)
            self._stopping.set()

    def _apply_backpressure(self, consumer: AIOKafkaConsumer) -> None:
        limit = self.settings.max_buffered_per_partition
        for tp, worker in self._workers.items():
            if tp not in self._paused and worker.backlog >= limit:
                consumer.pause(tp)
                self._paused.add(tp)
            elif tp in self._paused and worker.backlog <= limit // 2:
                consumer.resume(tp)
                self._paused.discard(tp)

    # ---- commits -------------------------------------------------------------------------------------------------
    async def _commit_loop(self) -> None:
        interval = self.settings.commit_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            async with self._rebalance_lock:
                await self._commit({tp: w.watermark for tp, w in self._workers.items()})
            self._update_lag()

    async def _commit(self, watermarks: dict[TopicPartition, int | None]) -> None:
        offsets = {
            tp: mark for tp, mark in watermarks.items() if mark is not None and mark > self._committed.get(tp, -1)
        }
        if not offsets or self._consumer is None:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # During a rebalance a commit can be refused; the records come again and are de-duplicated.
            log.warning("%s: commit failed (%s); the records will be redelivered", self.service, exc)
            return
        self._committed.update(offsets)

    def _update_lag(self) -> None:
        if self._consumer is None:
            return
        for tp in self._workers:
            with contextlib.suppress(Exception):
                highwater = self._consumer.highwater(tp)
                committed = self._committed.get(tp)
                if highwater is not None and committed is not None:
                    metrics.CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(
                        max(highwater - committed, 0)
                    )

    # ---- rebalance -----------------------------------------------------------------------------------------------
    async def _on_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        async with self._rebalance_lock:
            for tp in assigned:
                if tp in self._workers:
                    continue
                worker: PartitionWorker[Delivery] = PartitionWorker(
                    f"{tp.topic}[{tp.partition}]",
                    self.processor.process,
                    max_in_flight=self.settings.max_in_flight_per_partition,
                )
                worker.start()
                self._workers[tp] = worker
            metrics.PARTITIONS_ASSIGNED.labels(self.service).set(len(self._workers))
        log.info("%s assigned %d partition(s)", self.service, len(self._workers))

    async def _on_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self._rebalance_lock:
            await self._stop_workers([tp for tp in revoked if tp in self._workers])
            metrics.PARTITIONS_ASSIGNED.labels(self.service).set(len(self._workers))

    async def _stop_workers(self, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        grace = self.settings.shutdown_grace_seconds
        marks = await asyncio.gather(*(self._workers[tp].stop(grace) for tp in partitions))
        await self._commit(dict(zip(partitions, marks, strict=True)))
        for tp in partitions:
            self._workers.pop(tp, None)
            self._committed.pop(tp, None)
            self._paused.discard(tp)

    # ---- parked records ------------------------------------------------------------------------------------------
    async def resume_parked(self, organization_id: UUID, *, connected_at: datetime) -> int:
        """Send this organization's records parked before ``connected_at`` back through the first retry tier."""
        resumed = 0
        tier_topic = retry_topic(self.service, 1)
        while True:
            async with self.db.connect() as conn:
                batch = await ledger.list_parked(
                    conn, self.group, organization_id, limit=200, parked_before=connected_at
                )
            if not batch:
                break
            now = datetime.now(UTC)
            records = [
                OutboundRecord(
                    tier_topic,
                    p.key,
                    p.value,
                    h.merge(
                        h.without_qbsync_context(p.headers),
                        {
                            h.ORIGINAL_TOPIC: p.headers.get(h.ORIGINAL_TOPIC, p.topic),
                            h.ORIGINAL_PARTITION: p.headers.get(h.ORIGINAL_PARTITION, str(p.partition)),
                            h.ORIGINAL_OFFSET: p.headers.get(h.ORIGINAL_OFFSET, str(p.offset)),
                            h.ORIGINAL_TIMESTAMP: p.headers.get(h.ORIGINAL_TIMESTAMP, ""),
                            # Parking is not a failed attempt: the record gets the same attempt number again.
                            h.ATTEMPT: str(p.attempt),
                            h.FIRST_FAILURE_AT: p.headers.get(h.FIRST_FAILURE_AT, h.format_time(now)),
                            h.DUE_AT: h.format_time(now),
                            h.CONSUMER_GROUP: self.group,
                            h.SERVICE: self.service,
                            h.RESUMED_FROM_PARK: "true",
                        },
                    ),
                )
                for p in batch
            ]
            await self.publisher.send_all(records)
            async with self.db.transaction() as conn:
                await ledger.delete_parked(conn, [p.id for p in batch])
            resumed += len(batch)
        if resumed:
            log.info("%s resumed %d parked record(s) of organization %s", self.service, resumed, organization_id)
        await self._refresh_parked_gauge()
        return resumed

    async def _on_connected(self, ctx: HandlerContext, event: QboConnected) -> Recorded:
        async def persist(conn: Any) -> None:
            await ledger.set_connection_state(
                conn,
                organization_id=event.organization_id,
                status="connected",
                realm_id=event.payload.realm_id,
                reason=None,
                changed_at=event.occurred_at,
                event_id=event.event_id,
            )

        async def resume() -> None:
            await self.resume_parked(event.organization_id, connected_at=event.occurred_at)

        return Recorded(persist=persist, after_commit=resume)

    async def _on_connection_lost(self, ctx: HandlerContext, event: QboConnectionLost) -> Recorded:
        async def persist(conn: Any) -> None:
            await ledger.set_connection_state(
                conn,
                organization_id=event.organization_id,
                status="lost",
                realm_id=event.payload.realm_id,
                reason=event.payload.message,
                changed_at=event.occurred_at,
                event_id=event.event_id,
            )

        return Recorded(persist=persist)

    async def _sweep_loop(self) -> None:
        """Safety net: resume records parked before a reconnect this service already knows about.

        The cutoff is the sweep's own clock, not the reconnect event's ``occurred_at``: a record whose attempt
        started after token-manager reconnected but before this service consumed ``QboConnected`` parked (the
        service still knew the connection as lost) with a start later than ``occurred_at``; cut off there it would
        stay parked until the next reconnect. While the status here is ``connected`` every parked record predates it.
        """
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                swept_at = datetime.now(UTC)
                async with self.db.connect() as conn:
                    rows = (
                        await conn.execute(
                            select(connection_status.c.organization_id, connection_status.c.changed_at)
                            .where(connection_status.c.status == "connected")
                            .where(
                                connection_status.c.organization_id.in_(
                                    select(parked_records.c.organization_id).where(
                                        parked_records.c.consumer_group == self.group
                                    )
                                )
                            )
                        )
                    ).all()
                for org, _changed_at in rows:
                    await self.resume_parked(org, connected_at=swept_at)
                await self._refresh_parked_gauge()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: parked-record sweep failed: %s", self.service, exc)

    async def _refresh_parked_gauge(self) -> None:
        async with self.db.connect() as conn:
            metrics.PARKED.labels(self.service).set(await ledger.count_parked(conn, self.group))


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, runtime: ConsumerRuntime) -> None:
        self._runtime = runtime

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._runtime._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._runtime._on_assigned(assigned)
