"""Graceful shutdown, consumer-group scale-out and takeover, and migrations matching the models."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from qbsync.contracts.batchly import CustomerCreated
from qbsync.persistence import Database, upgrade
from qbsync.persistence.tables import metadata
from qbsync.runtime import Completed, HandlerContext, HandlerRegistry
from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync.topics import BATCHLY_CUSTOMERS, QBSYNC_SYNC_RESULTS
from tests.integration.harness import (
    Kafka,
    customer_created,
    insert_effect,
    running_runtime,
    service_topic_names,
    wait_for,
)

pytestmark = [pytest.mark.kafka]


async def test_graceful_shutdown_lets_in_flight_records_finish_and_commits_them(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings, sqlite_database_settings: DatabaseSettings
) -> None:
    service = "shutdown-test"
    started = asyncio.Event()
    registry = HandlerRegistry()

    @registry.on(CustomerCreated)
    async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
        started.set()
        await asyncio.sleep(1.0)  # a slow QBO call in flight when the stop arrives

        async def persist(conn: Any) -> None:
            await insert_effect(conn, event.event_id, event.entity_id, "slow")

        return Completed(action="created", qbo_id="5", persist=persist)

    event = customer_created()
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await kafka.create(*service_topic_names(service, [BATCHLY_CUSTOMERS], 2), QBSYNC_SYNC_RESULTS)
        async with running_runtime(
            service=service,
            topics=[BATCHLY_CUSTOMERS],
            registry=registry,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=sqlite_database_settings,
        ) as rt:
            await kafka.publish(event)
            await asyncio.wait_for(started.wait(), 30)
            await rt.runtime.stop()  # while the handler sleeps
            assert len(await rt.effect_rows()) == 1, "the in-flight record finished"
        results = await kafka.read(QBSYNC_SYNC_RESULTS, expect=1)
        assert json.loads(results[0].value or b"")["event_type"] == "SyncCompleted"
        committed = await kafka.committed(f"qbsync.{service}", BATCHLY_CUSTOMERS)
        ends = await kafka.end_offsets(BATCHLY_CUSTOMERS)
        assert all((committed.get(p) or 0) == end for p, end in ends.items()), "its offset was committed"


async def test_two_consumers_share_partitions_and_the_survivor_takes_over_without_loss_or_duplicates(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings, postgres_database_settings: DatabaseSettings
) -> None:
    service = "scaleout-test"
    seen: dict[str, list[uuid.UUID]] = {"a": [], "b": []}

    def registry_for(name: str) -> HandlerRegistry:
        registry = HandlerRegistry()

        @registry.on(CustomerCreated)
        async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
            seen[name].append(event.event_id)
            await asyncio.sleep(0.01)

            async def persist(conn: Any) -> None:
                await insert_effect(conn, event.event_id, event.entity_id, name)

            return Completed(action="created", qbo_id="1", persist=persist)

        return registry

    orgs = [uuid.uuid4() for _ in range(12)]
    first_half = [customer_created(orgs[i % 12]) for i in range(60)]
    second_half = [customer_created(orgs[i % 12]) for i in range(60)]
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await kafka.create(*service_topic_names(service, [BATCHLY_CUSTOMERS], 2), QBSYNC_SYNC_RESULTS)
        common = {
            "service": service,
            "topics": [BATCHLY_CUSTOMERS],
            "kafka": kafka_settings,
            "topic_settings": topic_settings,
            "database": postgres_database_settings,
        }
        async with running_runtime(registry=registry_for("a"), **common) as a:
            async with running_runtime(registry=registry_for("b"), **common):
                await wait_for(lambda: a.runtime.assigned and len(a.runtime.assigned) < 9, timeout=30)
                await kafka.publish(*first_half)
                await wait_for(lambda: len(seen["a"]) + len(seen["b"]) >= 60, timeout=60)
                assert seen["a"], "both members got work"
                assert seen["b"], "both members got work"
            # b left the group: a takes over every partition and handles what follows
            await kafka.publish(*second_half)
            await wait_for(lambda: len(set(seen["a"]) | set(seen["b"])) >= 120, timeout=60)
            await wait_for(lambda: _effects_at_least(a, 120), timeout=30)
            rows = await a.effect_rows()
        ids = [r.event_id for r in rows]
        assert len(ids) == 120
        assert len(set(ids)) == 120, "no event's effect was applied twice"
        assert {e.event_id for e in (*first_half, *second_half)} == set(ids)


async def _effects_at_least(rt: Any, count: int) -> bool:
    return len(await rt.effect_rows()) >= count


async def test_migrations_produce_exactly_the_tables_the_code_declares(database_settings: DatabaseSettings) -> None:
    db = await Database.open("migration-check", database_settings)
    try:
        await upgrade(db)
        await upgrade(db)  # idempotent

        def diff(connection: Any) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))

        async with db.connect() as conn:
            differences = await conn.run_sync(diff)
        ignored = {"alembic_version"}
        differences = [d for d in differences if not (d[0] == "remove_table" and d[1].name in ignored)]
        assert differences == [], differences
    finally:
        await db.close()
