"""Tax rates and codes: a full refresh that publishes only what changed; and organizations that are not connected:
their pulls park (never dead-letter) while Batchly's items are still remembered for matching."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from pull_sync import store
from qbo_emulator.accounting import Accounting
from qbsync.contracts.batchly import ItemCreated, ItemPayload, SyncPaymentsRequested, SyncTaxRequested
from qbsync.contracts.outbound import QboConnectionLost, QboConnectionLostPayload
from qbsync.persistence.tables import connection_status
from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync.topics import dead_letter_topic
from tests.fixtures.emulator import ServerHandle
from tests.integration.harness import Kafka, qbo_connected, wait_for
from tests.pull_sync.harness import SERVICE, Books, changes, command, create_topics, pull_sync_running

pytestmark = [pytest.mark.kafka]

SEEDED_RATES = 13  # CA, NY, TX, WA, IL, FL: state + local; MA: state only; OR: none
SEEDED_CODES = 8


async def test_tax_rates_and_codes_are_refreshed_and_only_changes_published(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    database_settings: DatabaseSettings,
) -> None:
    books = Books(emulator_server)
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with pull_sync_running(emulator_server, [books], kafka_settings, topic_settings, database_settings) as rt:
            first = command(SyncTaxRequested, books.org, requested_by="owner@example.com")
            await kafka.publish(first)
            done = await rt.finished(first.event_id)
            assert (done.status, done.action) == ("completed", "applied")
            rates = {d["payload"]["name"]: d["payload"] for d in await changes(kafka, "TaxRateChanged", at_least=13)}
            codes = {d["payload"]["name"]: d["payload"] for d in await changes(kafka, "TaxCodeChanged", at_least=8)}
            assert (len(rates), len(codes)) == (SEEDED_RATES, SEEDED_CODES)
            assert rates["CA State Sales Tax"]["rate_percent"] == "7.25000"
            assert rates["CA State Sales Tax"]["agency_name"] == "California Department of Tax and Fee Administration"
            california = codes["California"]
            assert (california["total_rate_percent"], california["taxable"]) == ("10.25000", True)
            assert set(california["tax_rate_ids"]) == {
                rates["CA State Sales Tax"]["qbo_tax_rate_id"],
                rates["Alameda County Sales Tax"]["qbo_tax_rate_id"],
            }
            assert codes["Oregon"]["tax_rate_ids"] == []

            again = command(SyncTaxRequested, books.org)
            await kafka.publish(again)
            assert (await rt.finished(again.event_id)).action == "unchanged"

            # the accountant adds a Nevada rate and retires Alameda County's
            agency = await books.id_of("TaxAgency", "California Department of Tax and Fee Administration")
            body = {
                "TaxCode": "Nevada",
                "TaxRateDetails": [
                    {"TaxRateName": "NV State", "RateValue": 6.85, "TaxAgencyId": agency, "TaxApplicableOn": "Sales"}
                ],
            }
            async with httpx.AsyncClient(timeout=10) as http:
                response = await http.post(
                    f"{emulator_server.base_url}/v3/company/{books.realm}/taxservice/taxcode",
                    json=body,
                    headers={"Authorization": f"Bearer {books.token}", "Accept": "application/json"},
                )
                assert response.status_code == 200, response.text
            alameda = rates["Alameda County Sales Tax"]["qbo_tax_rate_id"]
            books.bulk(lambda acc: _deactivate(acc, "TaxRate", alameda), 1)
            third = command(SyncTaxRequested, books.org)
            await kafka.publish(third)
            assert (await rt.finished(third.event_id)).action == "applied"
            later_rates = (await changes(kafka, "TaxRateChanged", at_least=SEEDED_RATES + 2))[SEEDED_RATES:]
            later_codes = (await changes(kafka, "TaxCodeChanged", at_least=SEEDED_CODES + 1))[SEEDED_CODES:]
            assert sorted((d["payload"]["name"], d["payload"]["change"]) for d in later_rates) == [
                ("Alameda County Sales Tax", "deactivated"),
                ("NV State", "created"),
            ]
            assert [(d["payload"]["name"], d["payload"]["total_rate_percent"]) for d in later_codes] == [
                ("Nevada", "6.85000")
            ]


def _deactivate(acc: Accounting, entity: str, qbo_id: str) -> dict[str, Any]:
    """What the accountant does in QuickBooks' settings (the API itself cannot change a tax rate)."""
    row = dict(acc.company.get(entity, qbo_id) or {})
    row["Active"] = False
    acc.ctx.touch(entity, row)
    return row


async def test_pulls_of_an_organization_that_is_not_connected_park_and_never_dead_letter(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    books = Books(emulator_server)
    stranger = uuid.uuid4()  # connected as far as pull-sync heard, but token-manager has no token for it
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with pull_sync_running(
            emulator_server, [books], kafka_settings, topic_settings, sqlite_database_settings
        ) as rt:
            now = datetime.now(UTC)
            lost = QboConnectionLost(
                event_id=uuid.uuid4(),
                event_type="QboConnectionLost",
                schema_version=1,
                occurred_at=now,
                organization_id=books.org,
                entity_id=books.org,
                entity_version=int(now.timestamp() * 1000) + 1,
                payload=QboConnectionLostPayload(
                    realm_id=books.realm, reason="refresh_failed", message="refresh token revoked", lost_at=now
                ),
            )
            await kafka.publish(lost, qbo_connected(stranger))

            async def recorded() -> bool:
                async with rt.db.connect() as conn:
                    states = dict(
                        (
                            await conn.execute(select(connection_status.c.organization_id, connection_status.c.status))
                        ).all()
                    )
                return states.get(books.org) == "lost" and states.get(stranger) == "connected"

            await wait_for(recorded)
            payments = command(SyncPaymentsRequested, books.org)
            item = ItemPayload(item_id=uuid.uuid4(), name="Parked Bagel", sku="PB-1", unit_price=Decimal("2"))
            created = ItemCreated(
                event_id=uuid.uuid4(),
                event_type="ItemCreated",
                schema_version=1,
                occurred_at=now,
                organization_id=books.org,
                entity_id=item.item_id,
                entity_version=1,
                payload=item,
            )
            tax = command(SyncTaxRequested, stranger)
            await kafka.publish(payments, created, tax)
            for event in (payments, created, tax):
                row = await rt.finished(event.event_id)
                assert (row.status, row.error_class) == ("parked", "auth_lost"), row
            async with rt.db.connect() as conn:
                remembered = (await conn.execute(select(store.batchly_items))).all()
            assert [(r.item_id, r.sku) for r in remembered] == [(item.item_id, "PB-1")], "kept for matching"
            assert "Parked Bagel" not in {r["Name"] for r in await books.rows("Item")}, "nothing written meanwhile"
            assert sum((await kafka.end_offsets(dead_letter_topic(SERVICE))).values()) == 0
