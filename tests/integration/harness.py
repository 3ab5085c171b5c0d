"""Helpers for runtime tests over a real broker: build events, produce raw records, read topics, run a runtime."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import Column, Integer, MetaData, String, Table, Uuid, select
from sqlalchemy.ext.asyncio import AsyncConnection

from qbsync.contracts.batchly import CustomerCreated, CustomerPayload
from qbsync.contracts.outbound import QboConnected, QboConnectedPayload
from qbsync.persistence import Database, upgrade
from qbsync.persistence.tables import sync_attempts, sync_ledger
from qbsync.runtime import ConsumerRuntime, HandlerRegistry, Publisher, ensure_topics
from qbsync.runtime.kafka import end_offsets, record_for
from qbsync.settings import DatabaseSettings, KafkaSettings, RuntimeSettings, TopicSettings
from qbsync.topics import QBSYNC_CONNECTIONS, TopicSpec, dead_letter_topic, retry_topic

# A table that stands for "the state a handler changes" (in a real service: entity links, snapshots, ...).
effects_metadata = MetaData()
effects = Table(
    "test_effects",
    effects_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False),
    Column("entity_id", Uuid, nullable=False),
    Column("note", String(200), nullable=True),
)

FAST_RUNTIME = RuntimeSettings(
    retry_delays_seconds=(0.5, 1.0),
    commit_interval_ms=50,
    shutdown_grace_seconds=5,
    outcome_retry_initial_seconds=0.05,
    outcome_retry_max_seconds=0.5,
    handler_timeout_seconds=20,
)


def customer_created(
    organization_id: uuid.UUID | None = None,
    *,
    entity_id: uuid.UUID | None = None,
    version: int = 1,
    name: str = "Acme Bakery",
) -> CustomerCreated:
    org = organization_id or uuid.uuid4()
    entity = entity_id or uuid.uuid4()
    return CustomerCreated(
        event_id=uuid.uuid4(),
        event_type="CustomerCreated",
        schema_version=1,
        occurred_at=datetime.now(UTC),
        organization_id=org,
        entity_id=entity,
        entity_version=version,
        payload=CustomerPayload(customer_id=entity, display_name=name, email="owner@acme.example"),
    )


def qbo_connected(organization_id: uuid.UUID) -> QboConnected:
    now = datetime.now(UTC)
    return QboConnected(
        event_id=uuid.uuid4(),
        event_type="QboConnected",
        schema_version=1,
        occurred_at=now,
        organization_id=organization_id,
        entity_id=organization_id,
        entity_version=int(now.timestamp() * 1000),
        payload=QboConnectedPayload(realm_id="9130000000001", environment="emulator", connected_at=now),
    )


@dataclass
class Raw:
    """A record as read back from a topic, headers decoded."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    timestamp: int


class Kafka:
    """Raw producer/reader for a test (topics are logical; the prefix is applied here)."""

    def __init__(self, settings: KafkaSettings, topics: TopicSettings) -> None:
        self.settings = settings
        self.prefix = topics.prefix
        self.topic_settings = topics
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> Kafka:
        self._producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap_servers, enable_idempotence=False)
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._producer is not None
        await self._producer.stop()

    async def create(self, *topics: str, partitions: int = 3) -> None:
        await ensure_topics(
            self.settings, self.topic_settings, [TopicSpec(t, partitions) for t in topics], client_id="test"
        )

    async def produce(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes | None]] = (),
        partition: int | None = None,
    ) -> None:
        assert self._producer is not None
        await self._producer.send_and_wait(
            self.prefix + topic,
            value,
            key=key,
            headers=list(headers),
            partition=partition,
        )

    async def publish(self, *events: Any, partition: int | None = None) -> None:
        for event in events:
            record = record_for(event)
            await self.produce(
                record.topic,
                record.value,
                key=record.key,
                headers=[(k, v.encode()) for k, v in record.headers.items()],
                partition=partition,
            )

    async def read(self, topic: str, *, expect: int, timeout: float = 30.0) -> list[Raw]:
        """Read a topic from the beginning until ``expect`` records arrived (fails on timeout)."""
        consumer = AIOKafkaConsumer(
            self.prefix + topic,
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: list[Raw] = []
        try:
            async with asyncio.timeout(timeout):
                while len(found) < expect:
                    batch = await consumer.getmany(timeout_ms=200)
                    for records in batch.values():
                        found.extend(
                            Raw(
                                r.topic.removeprefix(self.prefix),
                                r.partition,
                                r.offset,
                                r.key,
                                r.value,
                                {k: (v or b"").decode() for k, v in r.headers},
                                r.timestamp,
                            )
                            for r in records
                        )
            # a short extra window to catch records beyond the expected count
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                found.extend(
                    Raw(
                        r.topic.removeprefix(self.prefix),
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        {k: (v or b"").decode() for k, v in r.headers},
                        r.timestamp,
                    )
                    for r in records
                )
        except TimeoutError:
            raise AssertionError(f"expected {expect} record(s) on {topic}, got {len(found)}") from None
        finally:
            await consumer.stop()
        return found

    async def end_offsets(self, topic: str) -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers)
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(self.prefix + topic) or set()
            tps = [TopicPartition(self.prefix + topic, p) for p in partitions]
            consumer.assign(tps)
            ends = await end_offsets(consumer, tps)  # exact also where tansu under-reports (multi-record batches)
            return {tp.partition: offset for tp, offset in ends.items()}
        finally:
            await consumer.stop()

    async def committed(self, group: str, topic: str) -> dict[int, int | None]:
        consumer = AIOKafkaConsumer(
            # A runtime's Kafka group id carries the topic prefix, as its topics do.
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=self.prefix + group,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(self.prefix + topic) or set()
            return {p: await consumer.committed(TopicPartition(self.prefix + topic, p)) for p in partitions}
        finally:
            await consumer.stop()


def service_topic_names(service: str, main: Sequence[str], tiers: int) -> list[str]:
    """Every topic a test runtime touches: its main topics, connections, its tiers and dead letters."""
    return [
        *main,
        QBSYNC_CONNECTIONS,
        *(retry_topic(service, t) for t in range(1, tiers + 1)),
        dead_letter_topic(service),
    ]


@dataclass
class RuntimeUnderTest:
    runtime: ConsumerRuntime
    db: Database
    publisher: Publisher
    registry: HandlerRegistry
    service: str
    group: str
    extras: dict[str, Any] = field(default_factory=dict)

    async def ledger_rows(self) -> list[Any]:
        async with self.db.connect() as conn:
            return list((await conn.execute(select(sync_ledger).order_by(sync_ledger.c.created_at))).all())

    async def attempts(self, ledger_id: uuid.UUID) -> list[Any]:
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(sync_attempts).where(sync_attempts.c.ledger_id == ledger_id).order_by(sync_attempts.c.id)
            )
            return list(rows.all())

    async def effect_rows(self) -> list[Any]:
        async with self.db.connect() as conn:
            return list((await conn.execute(select(effects))).all())


async def open_database(
    service: str,
    settings: DatabaseSettings,
    *,
    branches: Sequence[str] = ("runtime",),
    locations: Sequence[Path] = (),
) -> Database:
    db = await Database.open(service, settings)
    await upgrade(db, branches, version_locations=locations)
    async with db.transaction() as conn:
        await conn.run_sync(effects_metadata.create_all)
    return db


@asynccontextmanager
async def running_runtime(
    *,
    service: str,
    topics: Sequence[str],
    kafka: KafkaSettings,
    topic_settings: TopicSettings,
    database: DatabaseSettings,
    registry: HandlerRegistry | None = None,
    registry_factory: Callable[[Publisher], HandlerRegistry] | None = None,
    runtime_settings: RuntimeSettings = FAST_RUNTIME,
    wait_assigned: int | None = None,
    migration_branches: Sequence[str] = ("runtime",),
    migration_locations: Sequence[Path] = (),
    **options: Any,
) -> AsyncIterator[RuntimeUnderTest]:
    """Run a consumer runtime in-process; pass a ready ``registry`` or a ``registry_factory(publisher)``."""
    db = await open_database(service, database, branches=migration_branches, locations=migration_locations)
    publisher = Publisher(kafka, client_id=service, topic_prefix=topic_settings.prefix)
    await publisher.start()
    if registry is None:
        assert registry_factory is not None, "pass registry or registry_factory"
        registry = registry_factory(publisher)
    runtime = ConsumerRuntime(
        service=service,
        registry=registry,
        db=db,
        publisher=publisher,
        kafka=kafka,
        settings=runtime_settings,
        topics=topics,
        **options,
    )
    await runtime.start()
    try:
        if wait_assigned:
            async with asyncio.timeout(30):
                while len(runtime.assigned) < wait_assigned:
                    await asyncio.sleep(0.05)
        yield RuntimeUnderTest(runtime, db, publisher, registry, service, runtime.group)
    finally:
        await runtime.stop()
        await publisher.stop()
        await db.close()


async def wait_for(predicate: Callable[[], Any], *, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll an async or sync predicate until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while True:
            result = predicate()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(interval)


async def insert_effect(conn: AsyncConnection, event_id: uuid.UUID, entity_id: uuid.UUID, note: str) -> None:
    await conn.execute(effects.insert().values(event_id=event_id, entity_id=entity_id, note=note))
