"""customer-sync through the real runtime, a real broker and the QBO emulator over HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from customer_sync import handlers, store
from customer_sync.sync import CustomerSync
from qbsync.contracts.batchly import (
    Address,
    CustomerCreated,
    CustomerPayload,
    CustomerUpdated,
    FlushCustomerUpdatesRequested,
    OrganizationPayload,
    OrganizationUpserted,
    SyncAllCustomersRequested,
    SyncScopePayload,
)
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.persistence.organizations import upsert_organization
from qbsync.qbo import QboClient, QboClientSettings, StaticTokenProvider
from qbsync.runtime import HandlerRegistry, Publisher
from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync.topics import BATCHLY_COMMANDS, BATCHLY_CUSTOMERS, QBSYNC_SYNC_RESULTS, dead_letter_topic
from tests.fixtures.emulator import ServerHandle
from tests.integration.harness import (
    FAST_RUNTIME,
    Kafka,
    RuntimeUnderTest,
    open_database,
    running_runtime,
    service_topic_names,
    wait_for,
)

pytestmark = [pytest.mark.kafka]

SERVICE = "customer-sync"


class Org:
    """One Batchly organization connected to one emulator company, with helpers to make its events."""

    def __init__(self, server: ServerHandle) -> None:
        self.id = uuid.uuid4()
        self.realm = server.create_company(name="Test Co")
        self.token = server.issue_tokens(self.realm)["access_token"]
        self.server = server
        self.versions: dict[uuid.UUID, int] = {}

    def event(self, kind: type[AnyEnvelope], customer: CustomerPayload, *, version: int | None = None) -> AnyEnvelope:
        if version is None:
            version = self.versions.get(customer.customer_id, 0) + 1
        self.versions[customer.customer_id] = max(version, self.versions.get(customer.customer_id, 0))
        return kind(
            event_id=uuid.uuid4(),
            event_type=kind.__name__,
            schema_version=1,
            occurred_at=datetime.now(UTC),
            organization_id=self.id,
            entity_id=customer.customer_id,
            entity_version=version,
            payload=customer,
        )

    def command(self, kind: type[AnyEnvelope], **payload: Any) -> AnyEnvelope:
        return kind(
            event_id=uuid.uuid4(),
            event_type=kind.__name__,
            schema_version=1,
            occurred_at=datetime.now(UTC),
            organization_id=self.id,
            entity_id=self.id,
            entity_version=1,
            payload=SyncScopePayload(**payload),
        )

    def customers(self, active: str = "all") -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.server.base_url}/_admin/companies/{self.realm}/entities/Customer",
            params={} if active == "all" else {"active": active},
            timeout=10,
        )
        response.raise_for_status()
        return list(response.json()["Customer"])

    def write(self, entity: str, body: dict[str, Any], operation: str = "create") -> dict[str, Any]:
        response = httpx.post(
            f"{self.server.base_url}/_admin/companies/{self.realm}/accountant/write",
            json={"entity": entity, "operation": operation, "body": body},
            timeout=10,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result.get(entity, result)


def customer(**fields: Any) -> CustomerPayload:
    return CustomerPayload(
        customer_id=fields.pop("customer_id", uuid.uuid4()),
        **({"display_name": f"Customer {uuid.uuid4().hex[:8]}"} | fields),
    )


@asynccontextmanager
async def customer_sync_running(
    server: ServerHandle,
    orgs: list[Org],
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    database: DatabaseSettings,
) -> AsyncIterator[RuntimeUnderTest]:
    qbo = QboClient(
        QboClientSettings(base_url=server.base_url), StaticTokenProvider({o.id: (o.realm, o.token) for o in orgs})
    )

    def registry_for(publisher: Publisher) -> HandlerRegistry:
        registry = HandlerRegistry()
        handlers.register(registry, CustomerSync(qbo, publisher, service=SERVICE, runtime=FAST_RUNTIME))
        return registry

    try:
        async with running_runtime(
            service=SERVICE,
            topics=[BATCHLY_CUSTOMERS, BATCHLY_COMMANDS],
            registry_factory=registry_for,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=database,
            migration_branches=("runtime", "customer_sync"),
            migration_locations=(store.MIGRATIONS,),
        ) as rt:
            yield rt
    finally:
        await qbo.aclose()


async def results_for(kafka: Kafka, expect: int) -> dict[str, list[dict[str, Any]]]:
    """Sync results by source event id."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in await kafka.read(QBSYNC_SYNC_RESULTS, expect=expect, timeout=60):
        document = json.loads(record.value or b"")
        grouped.setdefault(document["payload"]["source_event_id"], []).append(document)
    return grouped


async def until(check: Callable[[], Any], timeout: float = 45) -> Any:
    return await wait_for(check, timeout=timeout)


async def _setup(kafka: Kafka) -> None:
    await kafka.create(*service_topic_names(SERVICE, [BATCHLY_CUSTOMERS, BATCHLY_COMMANDS], 2), QBSYNC_SYNC_RESULTS)


async def test_created_updated_and_deactivated_customer_converges_in_quickbooks(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    database_settings: DatabaseSettings,
) -> None:
    org = Org(emulator_server)
    first = customer(
        display_name="O'Brien's Bakery",
        email="owner@obrien.example",
        phone="555-0100",
        billing_address=Address(line1="1 Main St", city="Portland", region="OR", postal_code="97201"),
    )
    changed = first.model_copy(
        update={
            "email": None,
            "phone": "555-0199",
            "company_name": "O'Brien LLC",
            "billing_address": Address(line1="9 Oak Ave", city="Salem", region="OR"),
        }
    )
    inactive = changed.model_copy(update={"active": False})
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await _setup(kafka)
        async with customer_sync_running(
            emulator_server, [org], kafka_settings, topic_settings, database_settings
        ) as rt:
            created = org.event(CustomerCreated, first)
            await kafka.publish(created)
            results = await results_for(kafka, 1)
            done = results[str(created.event_id)][0]
            assert done["event_type"] == "SyncCompleted"
            assert done["payload"]["action"] == "created"
            qbo_id = done["payload"]["qbo_id"]

            await kafka.publish(org.event(CustomerUpdated, changed), org.event(CustomerUpdated, inactive))
            await results_for(kafka, 3)
            rows = org.customers()
            assert len(rows) == 1
            row = rows[0]
            assert row["Id"] == qbo_id, "immutable id"
            assert row["DisplayName"] == "O'Brien's Bakery"
            assert row["CompanyName"] == "O'Brien LLC"
            assert row["PrimaryPhone"]["FreeFormNumber"] == "555-0199"
            assert not (row.get("PrimaryEmailAddr") or {}).get("Address"), "the removed e-mail was cleared"
            assert row["BillAddr"]["Line1"] == "9 Oak Ave"
            assert row["BillAddr"]["City"] == "Salem"
            assert row["Active"] is False
            ledger = await rt.ledger_rows()
            assert sorted(r.status for r in ledger) == ["completed"] * 3
            assert {r.qbo_id for r in ledger} == {qbo_id}


async def test_existing_quickbooks_customers_are_linked_by_name_or_email_not_duplicated(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    org = Org(emulator_server)
    by_name = org.write("Customer", {"DisplayName": "Corner Café", "Active": False})
    by_email = org.write(
        "Customer", {"DisplayName": "J. Smith (old)", "PrimaryEmailAddr": {"Address": "js@example.com"}}
    )
    named = customer(display_name="Corner Café", phone="555-1111")
    emailed = customer(display_name="John Smith", email="js@example.com")
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await _setup(kafka)
        async with customer_sync_running(
            emulator_server, [org], kafka_settings, topic_settings, sqlite_database_settings
        ):
            events = [org.event(CustomerCreated, named), org.event(CustomerCreated, emailed)]
            await kafka.publish(*events)
            results = await results_for(kafka, 2)
            outcomes = {e.payload.display_name: results[str(e.event_id)][0]["payload"] for e in events}
            assert outcomes["Corner Café"]["action"] == "linked"
            assert outcomes["Corner Café"]["qbo_id"] == by_name["Id"]
            assert outcomes["John Smith"]["action"] == "linked"
            assert outcomes["John Smith"]["qbo_id"] == by_email["Id"]
            rows = {r["Id"]: r for r in org.customers()}
            assert len(rows) == 2, "nothing was duplicated"
            assert rows[by_name["Id"]]["Active"] is True, "the linked customer now carries Batchly's state"
            assert rows[by_name["Id"]]["PrimaryPhone"]["FreeFormNumber"] == "555-1111"
            assert rows[by_email["Id"]]["DisplayName"] == "John Smith"


async def test_a_name_held_by_a_vendor_or_employee_fails_clearly_and_invalid_input_names_the_field(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    org = Org(emulator_server)
    org.write("Vendor", {"DisplayName": "Northwind Supplies"})
    org.write("Employee", {"GivenName": "Dana", "FamilyName": "Ng", "DisplayName": "Dana Ng"})
    vendor_named = org.event(CustomerCreated, customer(display_name="Northwind Supplies"))
    employee_named = org.event(CustomerCreated, customer(display_name="Dana Ng"))
    bad_email = org.event(CustomerCreated, customer(display_name="Bad Email Co", email="nope@"))
    colon = org.event(CustomerCreated, customer(display_name="Parent:Child"))
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await _setup(kafka)
        async with customer_sync_running(
            emulator_server, [org], kafka_settings, topic_settings, sqlite_database_settings
        ):
            await kafka.publish(vendor_named, employee_named, bad_email, colon)
            results = await results_for(kafka, 4)
            failures = {eid: r[0]["payload"] for eid, r in results.items()}
            assert all(r[0]["event_type"] == "SyncFailed" for r in results.values())
            assert "held by a vendor" in failures[str(vendor_named.event_id)]["message"]
            assert "held by an employee" in failures[str(employee_named.event_id)]["message"]
            assert failures[str(vendor_named.event_id)]["error_class"] == "permanent"
            assert "email" in failures[str(bad_email.event_id)]["message"]
            assert "display_name" in failures[str(colon.event_id)]["message"]
            dead = await kafka.read(dead_letter_topic(SERVICE), expect=4)
            assert {r.headers["qbsync-attempt"] for r in dead} == {"1"}, "permanent: dead-lettered at once"
            assert org.customers() == [], "nothing was written to QuickBooks"


async def test_hard_names_sync_and_an_injection_attempt_stays_a_literal_name(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    org = Org(emulator_server)
    decoy = org.write("Customer", {"DisplayName": "Decoy"})
    names = ["Ünïcödé Café 北京 Ltd", "x" * 500, "O'Hara' OR DisplayName LIKE '%", "Back\\slash 'quote'"]
    customers = [customer(display_name=n) for n in names]
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await _setup(kafka)
        async with customer_sync_running(
            emulator_server, [org], kafka_settings, topic_settings, sqlite_database_settings
        ):
            events = [org.event(CustomerCreated, c) for c in customers]
            await kafka.publish(*events)
            results = await results_for(kafka, len(events))
            for event in events:
                outcome = results[str(event.event_id)][0]
                assert outcome["event_type"] == "SyncCompleted", outcome
                assert outcome["payload"]["action"] == "created", "the injection text did not match the decoy"
            rows = org.customers()
            assert sorted(r["DisplayName"] for r in rows) == sorted([*names, "Decoy"])
            assert decoy["Id"] not in {results[str(e.event_id)][0]["payload"]["qbo_id"] for e in events}
            # the same customers again (a new event each): found by their exact names, nothing duplicated
            await kafka.publish(
                *[org.event(CustomerUpdated, c.model_copy(update={"phone": "555-2222"})) for c in customers]
            )
            await results_for(kafka, 2 * len(events))
            assert len(org.customers()) == len(names) + 1


async def test_stale_updates_are_ignored_and_an_update_for_an_unsynced_customer_creates_it(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    org = Org(emulator_server)
    base = customer(display_name="Versioned Co")
    v3 = base.model_copy(update={"phone": "333"})
    v2 = base.model_copy(update={"phone": "222"})
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await _setup(kafka)
        async with customer_sync_running(
            emulator_server, [org], kafka_settings, topic_settings, sqlite_database_settings
        ):
            newest = org.event(CustomerUpdated, v3, version=3)  # arrives first: creates the customer
            older = org.event(CustomerUpdated, v2, version=2)
            created = org.event(CustomerCreated, base, version=1)
            await kafka.publish(newest, older, created)
            results = await results_for(kafka, 3)
            assert results[str(newest.event_id)][0]["payload"]["action"] == "created"
            for stale in (older, created):
                outcome = results[str(stale.event_id)][0]
                assert outcome["payload"]["status"] == "ignored"
                assert "older" in outcome["payload"]["message"]
            rows = org.customers()
            assert len(rows) == 1
            assert rows[0]["PrimaryPhone"]["FreeFormNumber"] == "333", "the newest snapshot wins"


async def test_an_outage_recovers_through_the_ladder_and_a_stale_sync_token_is_reread(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    org = Org(emulator_server)
    httpx.post(
        f"{emulator_server.base_url}/_admin/faults",
        timeout=10,
        json={
            "kind": "http_error",
            "status": 503,
            "realm_id": org.realm,
            "operation": "create",
            "entity": "customer",
            "next_n": 2,
        },
    ).raise_for_status()
    outage_customer = customer(display_name="Outage Co")
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await _setup(kafka)
        async with customer_sync_running(
            emulator_server, [org], kafka_settings, topic_settings, sqlite_database_settings
        ) as rt:
            created = org.event(CustomerCreated, outage_customer)
            await kafka.publish(created)
            results = await results_for(kafka, 3)
            statuses = [r["event_type"] for r in results[str(created.event_id)]]
            assert statuses[-1] == "SyncCompleted", statuses
            assert statuses.count("SyncStatusChanged") >= 1, "it went through a retry tier"
            assert len(org.customers()) == 1, "no duplicates after the outage"
            # the accountant edits the customer in QuickBooks: our stored SyncToken is now stale (5010)
            row = org.customers()[0]
            org.write(
                "Customer",
                {"Id": row["Id"], "SyncToken": row["SyncToken"], "sparse": True, "Notes": "note"},
                operation="update",
            )
            updated = org.event(CustomerUpdated, outage_customer.model_copy(update={"phone": "555-7777"}))
            await kafka.publish(updated)
            results = await results_for(kafka, 4)
            assert results[str(updated.event_id)][0]["payload"]["action"] == "updated"
            row = org.customers()[0]
            assert row["PrimaryPhone"]["FreeFormNumber"] == "555-7777"
            assert row["Notes"] == "note", "the accountant's own field survived (sparse update)"
            ledger = await rt.ledger_rows()
            first = next(r for r in ledger if r.event_id == created.event_id)
            assert first.attempts >= 2


async def test_an_older_snapshot_meeting_a_newer_ones_write_stands_down_instead_of_overwriting_it(
    emulator_server: ServerHandle, sqlite_database_settings: DatabaseSettings
) -> None:
    """Version 3 (a retry-tier copy) and version 4 (the main topic) of one customer are written at once. Version 4
    wrote first; its link is not committed yet, so version 3 still sees the old link and SyncToken and meets 5010.
    Re-reading the token and writing again would put version 3's data over version 4's in QuickBooks for good (the
    link then says 4): version 3 must stand down. (Seen once in the e2e shuffle test as a stale phone number.)"""
    org = Org(emulator_server)
    db = await open_database(
        SERVICE, sqlite_database_settings, branches=("runtime", "customer_sync"), locations=(store.MIGRATIONS,)
    )
    qbo = QboClient(
        QboClientSettings(base_url=emulator_server.base_url), StaticTokenProvider({org.id: (org.realm, org.token)})
    )
    unused = Publisher.__new__(Publisher)  # push() publishes nothing; no producer is started
    sync = CustomerSync(qbo, unused, service=SERVICE, runtime=FAST_RUNTIME)
    first = customer(display_name="Race Co", phone="555-0001")
    now = datetime.now(UTC)

    async def arrive(snapshot: CustomerPayload, version: int) -> None:  # what on_snapshot stores before it writes
        async with db.transaction() as conn:
            await store.store_snapshot(conn, org.id, snapshot, version=version, status="unsynced", now=now)

    async def push(snapshot: CustomerPayload, version: int) -> Any:
        return await sync.push(db, org.id, snapshot, version=version, event_id=uuid.uuid4(), force=False)

    try:
        await arrive(first, 1)
        created = await push(first, 1)
        async with db.transaction() as conn:  # version 1's outcome
            await sync._persist(org.id, first, 1, created, now)(conn)
        third = first.model_copy(update={"phone": "555-0003"})
        fourth = first.model_copy(update={"phone": "555-0004"})
        await arrive(third, 3)
        await arrive(fourth, 4)
        newer = await push(fourth, 4)  # written; its outcome (the link) not committed yet
        assert newer.action == "updated"
        older = await push(third, 3)
        assert older.action == "ignored"
        assert "superseded" in older.reason
        assert org.customers()[0]["PrimaryPhone"]["FreeFormNumber"] == "555-0004", "the newer write stands"
    finally:
        await qbo.aclose()
        await db.close()


async def test_nightly_mode_defers_updates_until_the_flush_and_sync_all_reports_progress(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    org = Org(emulator_server)
    members = [customer(display_name=f"Member {i}") for i in range(3)]
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await _setup(kafka)
        async with customer_sync_running(
            emulator_server, [org], kafka_settings, topic_settings, sqlite_database_settings
        ) as rt:
            async with rt.db.transaction() as conn:
                await upsert_organization(
                    conn,
                    OrganizationPayload(organization_id=org.id, name="Night Co", customer_update_mode="nightly"),
                    version=1,
                    now=datetime.now(UTC),
                )
            created = [org.event(CustomerCreated, m) for m in members]
            await kafka.publish(*created)
            await results_for(kafka, 3)
            update = org.event(CustomerUpdated, members[0].model_copy(update={"phone": "555-3000"}))
            await kafka.publish(update)
            results = await results_for(kafka, 4)
            held = results[str(update.event_id)][0]["payload"]
            assert held["status"] == "pending"
            assert "nightly" in held["message"]
            assert not (org.customers()[0].get("PrimaryPhone") or {}).get("FreeFormNumber")
            flush = org.command(FlushCustomerUpdatesRequested, requested_by="scheduler")
            await kafka.publish(flush)
            await until(
                lambda: any((r.get("PrimaryPhone") or {}).get("FreeFormNumber") == "555-3000" for r in org.customers())
            )
            # "Sync All Customers" over everything: already-synced customers are pushed again (force), 3 completions
            sync_all = org.command(SyncAllCustomersRequested, only_unsynced=False)
            await kafka.publish(sync_all)
            rows = await until(lambda: _children(rt, sync_all.event_id, 3))
            assert {r.status for r in rows} == {"completed"}
            ledger = {r.event_id: r for r in await rt.ledger_rows()}
            assert ledger[sync_all.event_id].warnings[0]["message"] == "3 synced, 0 failed (of 3)"
            assert len(org.customers()) == 3


async def _children(rt: RuntimeUnderTest, parent: uuid.UUID, count: int) -> list[Any] | None:
    rows = [
        r
        for r in await rt.ledger_rows()
        if r.entity_type == "customer" and r.event_type == "SyncAllCustomersRequested" and r.event_id != parent
    ]
    return rows if len(rows) >= count else None


_ = OrganizationUpserted  # (imported for readers: the settings above normally arrive as this event)
