"""Revoked in the emulator → ``QboConnectionLost`` exactly once; a sync service's work for that organization parks
(not dead-lettered), and completes after the reconnect — nothing lost, nothing twice. The sync service is a real
consumer runtime whose handler calls QBO through ``QboClient`` + ``TokenManagerClient``, as customer-sync will."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import SecretStr

from qbsync.contracts.batchly import CustomerCreated
from qbsync.qbo import QboClient, QboClientSettings, request_id
from qbsync.runtime import Completed, HandlerContext, HandlerRegistry
from qbsync.settings import DatabaseSettings, KafkaSettings, TokenManagerSettings, TopicSettings
from qbsync.tokens import TokenManagerClient
from qbsync.topics import BATCHLY_CUSTOMERS, QBSYNC_SYNC_RESULTS, dead_letter_topic
from tests.integration.harness import Kafka, customer_created, running_runtime, service_topic_names, wait_for
from tests.token_manager.harness import (
    SERVICE_TOKEN,
    OAuthEmulator,
    connect,
    connection_events,
    events_of,
    running_token_manager,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SERVICE = "customer-sync-probe"


async def test_revocation_parks_the_work_once_and_a_reconnect_completes_it(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    database_settings: DatabaseSettings,
) -> None:
    realm = oauth_emulator.create_company()
    org = uuid.uuid4()
    # each service owns its database: its own SQLite file, or its own PostgreSQL schema
    sync_database = database_settings.model_copy(
        update={"schema_name": f"{database_settings.schema_name}_sync" if database_settings.schema_name else None}
    )
    async with (
        running_token_manager(
            emulator=oauth_emulator, kafka=kafka_settings, topics=topic_settings, database=database_settings
        ) as tm,
        TokenManagerClient(TokenManagerSettings(url=tm.url, service_token=SecretStr(SERVICE_TOKEN))) as tokens,
        QboClient(QboClientSettings(base_url=oauth_emulator.base_url), tokens) as qbo,
        Kafka(kafka_settings, topic_settings) as kafka,
    ):
        registry = HandlerRegistry()
        calls: list[uuid.UUID] = []

        @registry.on(CustomerCreated)
        async def create_customer(ctx: HandlerContext, event: CustomerCreated) -> Completed:
            calls.append(event.event_id)
            customer = await qbo.company(event.organization_id).create(
                "Customer",
                {"DisplayName": event.payload.display_name},
                request_id=request_id(event.event_id, "customer.create"),
            )
            return Completed(action="created", qbo_id=customer["Id"])

        await kafka.create(*service_topic_names(SERVICE, [BATCHLY_CUSTOMERS], 2), QBSYNC_SYNC_RESULTS)
        async with running_runtime(
            service=SERVICE,
            topics=[BATCHLY_CUSTOMERS],
            registry=registry,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=sync_database,
            park_sweep_interval_seconds=0.5,
        ) as rt:
            await connect(tm.url, org)
            alpha = customer_created(org, name="Alpha Bakery")
            await kafka.publish(alpha)
            await wait_for(lambda: _statuses(rt, {alpha.event_id: "completed"}), timeout=30)

            await oauth_emulator.admin("POST", f"/companies/{realm}/revoke")  # the company owner disconnects the app
            beta, gamma = customer_created(org, name="Beta Bakery"), customer_created(org, name="Gamma Bakery")
            await kafka.publish(beta, gamma)
            await wait_for(
                lambda: _statuses(rt, {alpha.event_id: "completed", beta.event_id: "parked", gamma.event_id: "parked"}),
                timeout=30,
            )
            for _ in range(3):  # more requests while lost: all refused, none announces the loss again
                refused = await tm.token(org)
                assert refused.status_code == 409
                assert refused.json()["error"] == "needs_reconnect"
            await tm.service.maintain()
            status = await tm.status(org)
            assert status["status"] == "needs_reconnect"
            assert "invalid_grant" in status["last_error"]

            events = await connection_events(kafka, expect=2)
            lost = events_of(events, "QboConnectionLost", org)
            assert len(lost) == 1, "the loss is announced exactly once"
            assert lost[0].payload.reason == "refresh_failed"

            assert await connect(tm.url, org) == realm  # "Reconnect QuickBooks"
            await wait_for(
                lambda: _statuses(
                    rt, {alpha.event_id: "completed", beta.event_id: "completed", gamma.event_id: "completed"}
                ),
                timeout=60,
            )
            history = await rt.attempts(next(r.id for r in await rt.ledger_rows() if r.event_id == beta.event_id))
            assert history[0].outcome == "parked"
            assert history[-1].outcome == "completed"

        events = await connection_events(kafka, expect=3)
        assert [e.event_type for e in events if e.organization_id == org] == [
            "QboConnected",
            "QboConnectionLost",
            "QboConnected",
        ]
        assert await kafka.end_offsets(dead_letter_topic(SERVICE)) == dict.fromkeys(range(3), 0), "no dead letter"

    customers = (await oauth_emulator.admin("GET", f"/companies/{realm}/entities/Customer"))["Customer"]
    names = sorted(c["DisplayName"] for c in customers if c["DisplayName"].endswith("Bakery"))
    assert names == ["Alpha Bakery", "Beta Bakery", "Gamma Bakery"], "every customer exactly once"


async def _statuses(rt: Any, wanted: dict[uuid.UUID, str]) -> bool:
    rows = await rt.ledger_rows()
    seen = {row.event_id: row.status for row in rows}
    return all(seen.get(event_id) == status for event_id, status in wanted.items())
