"""Races and edge cases of outcome recording: final ledger rows are not downgraded; a handler's own constraint
violation is a failure, never an acknowledged non-outcome."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from qbsync.contracts.batchly import CustomerCreated
from qbsync.runtime import Completed, HandlerContext, HandlerRegistry
from qbsync.runtime import ledger as runtime_ledger
from qbsync.runtime.kafka import OutboundRecord
from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync.topics import BATCHLY_CUSTOMERS, QBSYNC_SYNC_RESULTS, dead_letter_topic
from tests.integration.harness import (
    Kafka,
    customer_created,
    effects,
    open_database,
    running_runtime,
    service_topic_names,
)

pytestmark = [pytest.mark.kafka]


def _entry(event_id: uuid.UUID, status: str) -> runtime_ledger.LedgerEntry:
    return runtime_ledger.LedgerEntry(
        service="edge",
        event_id=event_id,
        event_type="CustomerCreated",
        organization_id=uuid.uuid4(),
        entity_type="customer",
        entity_id=uuid.uuid4(),
        entity_version=1,
        direction="push",
        status=status,
        attempts=2,
        max_attempts=3,
        source_topic="batchly.customers",
        source_partition=0,
        source_offset=7,
        now=datetime.now(UTC),
        completed=status == "completed",
    )


async def test_a_completed_ledger_row_is_not_downgraded_by_a_racing_copy(database_settings: DatabaseSettings) -> None:
    db = await open_database("edge", database_settings)
    try:
        event_id = uuid.uuid4()
        async with db.transaction() as conn:
            await runtime_ledger.upsert_ledger(conn, _entry(event_id, "retrying"))
        async with db.transaction() as conn:
            await runtime_ledger.upsert_ledger(conn, _entry(event_id, "completed"))
        for late in ("retrying", "parked", "failed"):  # a slower copy of the same event reporting afterwards
            async with db.transaction() as conn:
                await runtime_ledger.upsert_ledger(conn, _entry(event_id, late))
        async with db.connect() as conn:
            from sqlalchemy import select

            from qbsync.persistence.tables import sync_ledger

            status = (await conn.execute(select(sync_ledger.c.status))).scalar_one()
        assert status == "completed"
        # a failed row may move on (an operator's replay can complete it)
        other = uuid.uuid4()
        for step in ("failed", "retrying", "completed"):
            async with db.transaction() as conn:
                await runtime_ledger.upsert_ledger(conn, _entry(other, step))
        async with db.connect() as conn:
            statuses = {r.event_id: r.status for r in await conn.execute(select(sync_ledger))}
        assert statuses[other] == "completed"
    finally:
        await db.close()


async def test_the_reads_before_a_handler_see_processed_failed_and_disconnected(
    database_settings: DatabaseSettings,
) -> None:
    """``ledger.seen`` answers the three pre-handler questions in one statement; each answer comes from its table."""
    db = await open_database("edge", database_settings)
    try:
        org, processed, failed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        record = OutboundRecord("qbsync.sync-results", b"k", b'{"x": 1}', {"event-type": "SyncCompleted"})
        async with db.transaction() as conn:
            await runtime_ledger.record_processed(
                conn,
                group="g",
                event_id=processed,
                event_type="CustomerCreated",
                organization_id=org,
                outcome="completed",
                results=[record],
                now=now,
            )
            await runtime_ledger.upsert_ledger(conn, _entry(failed, "failed"))
            await runtime_ledger.set_connection_state(
                conn,
                organization_id=org,
                status="lost",
                realm_id="1",
                reason="revoked",
                changed_at=now,
                event_id=uuid.uuid4(),
            )

        async def seen(event_id: uuid.UUID, organization_id: uuid.UUID, group: str = "g") -> runtime_ledger.Seen:
            async with db.connect() as conn:
                return await runtime_ledger.seen(
                    conn, group=group, service="edge", event_id=event_id, organization_id=organization_id
                )

        assert await seen(processed, org) == runtime_ledger.Seen(results=[record], status=None, connection="lost")
        assert await seen(processed, uuid.uuid4(), group="other") == runtime_ledger.Seen(None, None, None)
        assert await seen(failed, uuid.uuid4()) == runtime_ledger.Seen(results=None, status="failed", connection=None)
    finally:
        await db.close()


async def test_a_constraint_violation_in_the_handlers_own_state_goes_through_the_ladder(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings, sqlite_database_settings: DatabaseSettings
) -> None:
    service = "edge-integrity"
    registry = HandlerRegistry()
    attempts: list[int] = []

    @registry.on(CustomerCreated)
    async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
        attempts.append(ctx.attempt)

        async def persist(conn: Any) -> None:
            # the same primary key twice: a bug in the service's own state change
            await conn.execute(effects.insert().values(id=1, event_id=event.event_id, entity_id=event.entity_id))
            await conn.execute(effects.insert().values(id=1, event_id=event.event_id, entity_id=event.entity_id))

        return Completed(action="created", qbo_id="1", persist=persist)

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
            event = customer_created()
            await kafka.publish(event)
            dead = await kafka.read(dead_letter_topic(service), expect=1)
            assert dead[0].headers["qbsync-error-code"] == "integrity_error"
            assert dead[0].headers["qbsync-error-class"] == "internal"
            assert attempts == [1, 2, 3], "it went through the whole ladder, as an unexpected failure does"
            ledger = await rt.ledger_rows()
            assert (ledger[0].status, ledger[0].attempts) == ("failed", 3)
            assert await rt.effect_rows() == [], "the broken state change was rolled back every time"
