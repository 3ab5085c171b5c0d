"""Retry tiers honour due times without blocking other partitions; lost connections park work until reconnect."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qbsync.contracts.batchly import CustomerCreated
from qbsync.contracts.outbound import QboConnectionLost, QboConnectionLostPayload
from qbsync.qbo.errors import QboAuthLostError
from qbsync.runtime import Completed, HandlerContext, HandlerRegistry
from qbsync.runtime import headers as h
from qbsync.runtime.kafka import record_for
from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync.topics import BATCHLY_CUSTOMERS, QBSYNC_SYNC_RESULTS, dead_letter_topic, retry_topic
from tests.integration.harness import (
    Kafka,
    customer_created,
    qbo_connected,
    running_runtime,
    service_topic_names,
    wait_for,
)

pytestmark = [pytest.mark.kafka]


def _tier_record_headers(event: CustomerCreated, due: datetime) -> list[tuple[str, bytes | None]]:
    now = datetime.now(UTC)
    headers = {
        h.CONTENT_TYPE: h.JSON,
        h.EVENT_TYPE: event.event_type,
        h.ORIGINAL_TOPIC: BATCHLY_CUSTOMERS,
        h.ORIGINAL_PARTITION: "0",
        h.ORIGINAL_OFFSET: "0",
        h.ATTEMPT: "2",
        h.FIRST_FAILURE_AT: h.format_time(now),
        h.DUE_AT: h.format_time(due),
    }
    return [(k, v.encode()) for k, v in headers.items()]


async def test_a_record_due_later_is_not_handled_early_and_does_not_block_other_partitions(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings, database_settings: DatabaseSettings
) -> None:
    service = "timing-test"
    handled: dict[uuid.UUID, datetime] = {}
    registry = HandlerRegistry()

    @registry.on(CustomerCreated)
    async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
        handled[event.event_id] = datetime.now(UTC)
        return Completed(action="created", qbo_id="1")

    tier = retry_topic(service, 1)
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await kafka.create(*service_topic_names(service, [BATCHLY_CUSTOMERS], 2), QBSYNC_SYNC_RESULTS)
        async with running_runtime(
            service=service,
            topics=[BATCHLY_CUSTOMERS],
            registry=registry,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=database_settings,
            wait_assigned=1,
        ):
            late = customer_created()
            due = datetime.now(UTC) + timedelta(seconds=2)
            record = record_for(late)
            await kafka.produce(
                tier, record.value, key=record.key, headers=_tier_record_headers(late, due), partition=0
            )
            # behind it on the same partition: already due, must still wait for the head (tier order = due order)
            behind = customer_created()
            record = record_for(behind)
            await kafka.produce(
                tier,
                record.value,
                key=record.key,
                headers=_tier_record_headers(behind, datetime.now(UTC)),
                partition=0,
            )
            # due now on another tier partition, and fresh records on the main topic
            others = [customer_created() for _ in range(3)]
            for event in others:
                record = record_for(event)
                await kafka.produce(
                    tier,
                    record.value,
                    key=record.key,
                    headers=_tier_record_headers(event, datetime.now(UTC)),
                    partition=1,
                )
            fresh = [customer_created() for _ in range(3)]
            await kafka.publish(*fresh)

            await wait_for(lambda: all(e.event_id in handled for e in (*others, *fresh)), timeout=20)
            assert late.event_id not in handled, "the record due later is not handled early"
            assert all(handled[e.event_id] < due for e in (*others, *fresh)), "other partitions were not blocked"

            await wait_for(lambda: late.event_id in handled and behind.event_id in handled, timeout=20)
            assert handled[late.event_id] >= due, "never before its due time"
            # the record behind it was due long ago, but nothing behind a waiting head starts before the head is due
            # (once the head is due both may run concurrently: they are different entities)
            assert handled[behind.event_id] >= due


async def test_lost_connection_parks_work_and_reconnect_resumes_it_without_dead_letters(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings, database_settings: DatabaseSettings
) -> None:
    service = "parking-test"
    connected = asyncio.Event()
    calls: list[tuple[uuid.UUID, int]] = []
    registry = HandlerRegistry()

    @registry.on(CustomerCreated)
    async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
        calls.append((event.event_id, ctx.attempt))
        if not connected.is_set():
            raise QboAuthLostError("token-manager: organization must reconnect QuickBooks")
        return Completed(action="created", qbo_id=f"q{len(calls)}")

    org = uuid.uuid4()
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await kafka.create(*service_topic_names(service, [BATCHLY_CUSTOMERS], 2), QBSYNC_SYNC_RESULTS)
        async with running_runtime(
            service=service,
            topics=[BATCHLY_CUSTOMERS],
            registry=registry,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=database_settings,
            park_sweep_interval_seconds=0.5,
        ) as rt:
            first = customer_created(org)
            await kafka.publish(first)
            parked_status = await kafka.read(QBSYNC_SYNC_RESULTS, expect=1)
            assert json.loads(parked_status[0].value or b"")["payload"]["status"] == "parked"
            ledger = await wait_for(rt.ledger_rows)
            assert ledger[0].status == "parked"

            # token-manager announces the loss: later events park without calling the handler at all
            lost = QboConnectionLost(
                event_id=uuid.uuid4(),
                event_type="QboConnectionLost",
                schema_version=1,
                occurred_at=datetime.now(UTC),
                organization_id=org,
                entity_id=org,
                entity_version=1,
                payload=QboConnectionLostPayload(
                    reason="refresh_failed", message="invalid_grant", lost_at=datetime.now(UTC)
                ),
            )
            await kafka.publish(lost)
            await asyncio.sleep(0.5)
            second = customer_created(org)
            await kafka.publish(second)
            await kafka.read(QBSYNC_SYNC_RESULTS, expect=2)
            assert [c[0] for c in calls] == [first.event_id], "the second event parked without a QBO attempt"

            connected.set()
            await kafka.publish(qbo_connected(org))
            results = await kafka.read(QBSYNC_SYNC_RESULTS, expect=4)
            completed = [json.loads(r.value or b"") for r in results]
            completed = [c for c in completed if c["event_type"] == "SyncCompleted"]
            assert sorted(c["causation_id"] for c in completed) == sorted([str(first.event_id), str(second.event_id)])

            rows = await wait_for(
                lambda: _statuses(rt, {"completed"}),
            )
            assert len(rows) == 2
            assert await kafka.end_offsets(dead_letter_topic(service)) == dict.fromkeys(range(3), 0), (
                "nothing dead-lettered"
            )
            history = await rt.attempts(next(r.id for r in rows if r.event_id == first.event_id))
            assert [a.outcome for a in history] == ["parked", "completed"]
            async with rt.db.connect() as conn:
                from sqlalchemy import func, select

                from qbsync.persistence.tables import parked_records

                left = (await conn.execute(select(func.count()).select_from(parked_records))).scalar_one()
            assert left == 0


async def _statuses(rt: Any, wanted: set[str]) -> list[Any] | None:
    rows: list[Any] = await rt.ledger_rows()
    return rows if rows and all(r.status in wanted for r in rows) and len(rows) == 2 else None
