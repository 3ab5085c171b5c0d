"""Regression (found by the campaign): a record parked in the window between token-manager's reconnect and this
service consuming ``QboConnected`` stayed parked for good.

The record's attempt starts after the reconnect happened (its ``parked_at`` is later than ``QboConnected``'s
``occurred_at``) but while the service still knows the connection as lost, so it parks. The reconnect's resume then
releases only records parked before ``occurred_at``, and the periodic sweep used the same cutoff — so the record
waited for the next reconnect, which may never come. In the reduced campaign one PaymentRecorded of a revoked
organization ended with no outcome this way. The sweep now releases every record parked before its own run while the
organization is connected.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from qbsync.contracts.batchly import CustomerCreated
from qbsync.contracts.outbound import (
    QboConnected,
    QboConnectedPayload,
    QboConnectionLost,
    QboConnectionLostPayload,
)
from qbsync.runtime import Completed, HandlerContext, HandlerRegistry, ledger
from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync.topics import BATCHLY_CUSTOMERS, QBSYNC_SYNC_RESULTS
from tests.integration.harness import (
    Kafka,
    RuntimeUnderTest,
    customer_created,
    running_runtime,
    service_topic_names,
    wait_for,
)

pytestmark = [pytest.mark.kafka]


def _lost(org: uuid.UUID, at: datetime) -> QboConnectionLost:
    return QboConnectionLost(
        event_id=uuid.uuid4(),
        event_type="QboConnectionLost",
        schema_version=1,
        occurred_at=at,
        organization_id=org,
        entity_id=org,
        entity_version=int(at.timestamp() * 1000),
        payload=QboConnectionLostPayload(reason="revoked", message="revoked at Intuit", lost_at=at),
    )


def _connected(org: uuid.UUID, at: datetime) -> QboConnected:
    return QboConnected(
        event_id=uuid.uuid4(),
        event_type="QboConnected",
        schema_version=1,
        occurred_at=at,
        organization_id=org,
        entity_id=org,
        entity_version=int(at.timestamp() * 1000),
        payload=QboConnectedPayload(realm_id="9130000000001", environment="emulator", connected_at=at),
    )


async def test_a_record_parked_after_the_reconnect_but_before_it_was_consumed_is_released(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings, database_settings: DatabaseSettings
) -> None:
    service = "park-race-test"
    registry = HandlerRegistry()
    handled: list[uuid.UUID] = []

    @registry.on(CustomerCreated)
    async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
        handled.append(event.event_id)
        return Completed(action="created", qbo_id="1")

    org = uuid.uuid4()
    start = datetime.now(UTC)
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await kafka.create(*service_topic_names(service, [BATCHLY_CUSTOMERS], 2), QBSYNC_SYNC_RESULTS)
        async with running_runtime(
            service=service,
            topics=[BATCHLY_CUSTOMERS],
            registry=registry,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=database_settings,
            park_sweep_interval_seconds=0.3,
        ) as rt:
            await kafka.publish(_lost(org, start - timedelta(minutes=5)))
            await wait_for(lambda: _status_is(rt, org, "lost"))
            event = customer_created(org)
            await kafka.publish(event)
            parked = await kafka.read(QBSYNC_SYNC_RESULTS, expect=1)
            assert json.loads(parked[0].value or b"")["payload"]["status"] == "parked"
            assert handled == [], "parked without calling the handler: the service knew the connection lost"

            # token-manager had reconnected a moment before that attempt started; this service learns it only now
            await kafka.publish(_connected(org, start - timedelta(seconds=1)))
            await wait_for(lambda: handled, timeout=15)
            results = await kafka.read(QBSYNC_SYNC_RESULTS, expect=2, timeout=15)
            documents = [json.loads(r.value or b"") for r in results]
            assert [d["event_type"] for d in documents] == ["SyncStatusChanged", "SyncCompleted"], documents
            assert handled == [event.event_id]


async def _status_is(rt: RuntimeUnderTest, org: uuid.UUID, status: str) -> bool:
    async with rt.db.connect() as conn:
        return await ledger.connection_state(conn, org) == status
