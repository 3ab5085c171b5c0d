"""invoice-sync at volume: a realistic stream beside the real customer-sync, a parked backlog released through
``/batch`` within a tight request budget, and "Sync All Unsent Invoices"."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from customer_sync import handlers as customer_handlers
from customer_sync import store as customer_store
from customer_sync.sync import CustomerSync
from invoice_sync import store
from invoice_sync.config import InvoiceSyncSettings
from qbsync.contracts.batchly import InvoiceCreated, SyncAllUnsentInvoicesRequested, SyncScopePayload
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.outbound import QboConnectionLost, QboConnectionLostPayload
from qbsync.persistence.tables import sync_ledger
from qbsync.qbo import QboClient, QboClientSettings, StaticTokenProvider
from qbsync.runtime import HandlerRegistry, Publisher
from qbsync.settings import DatabaseSettings, KafkaSettings, RuntimeSettings, TopicSettings
from qbsync.simulate import DEFAULT_CATALOG, BatchlyWorld, per_line_tax, with_redeliveries
from qbsync.topics import BATCHLY_COMMANDS, BATCHLY_CUSTOMERS
from tests.fixtures.emulator import ServerHandle
from tests.integration.harness import Kafka, RuntimeUnderTest, qbo_connected, running_runtime, service_topic_names
from tests.invoice_sync.support import (
    Company,
    create_topics,
    invoice_created,
    invoice_payload,
    invoice_sync_running,
    item_lines,
    lines_of,
    link_customer,
    outcomes,
    wait_linked,
)

pytestmark = [pytest.mark.kafka]

#: A ladder long enough for a customer that customer-sync is still creating when its invoice arrives.
PATIENT = RuntimeSettings(
    retry_delays_seconds=(0.5, 1.0, 2.0, 4.0, 8.0),
    commit_interval_ms=50,
    shutdown_grace_seconds=5,
    outcome_retry_initial_seconds=0.05,
    outcome_retry_max_seconds=0.5,
    handler_timeout_seconds=60,
)


async def _count(rt: RuntimeUnderTest, statement: Any) -> int:
    async with rt.db.connect() as conn:
        return int((await conn.execute(statement)).scalar() or 0)


async def _wait_completed(rt: RuntimeUnderTest, event_ids: set[uuid.UUID], *, timeout: float = 60) -> None:
    """Until the ledger shows every event completed (a document is marked synced before its outcome is recorded)."""
    statement = (
        select(func.count())
        .select_from(sync_ledger)
        .where(sync_ledger.c.event_id.in_(event_ids), sync_ledger.c.status == "completed")
    )
    async with asyncio.timeout(timeout):
        while await _count(rt, statement) < len(event_ids):
            await asyncio.sleep(0.2)


async def _wait_documents(rt: RuntimeUnderTest, status: str, count: int, *, timeout: float = 180) -> None:
    """Until ``count`` invoices have ``status`` (failing at once, with the reason, if one failed unexpectedly)."""
    statement = (
        select(func.count())
        .select_from(store.documents)
        .where(store.documents.c.kind == "invoice", store.documents.c.status == status)
    )
    async with asyncio.timeout(timeout):
        while await _count(rt, statement) < count:
            if status == "synced":
                async with rt.db.connect() as conn:
                    failed = (
                        await conn.execute(
                            select(store.documents.c.number, store.documents.c.last_error).where(
                                store.documents.c.status == "failed"
                            )
                        )
                    ).first()
                assert failed is None, f"invoice {failed.number} failed: {failed.last_error}"
            await asyncio.sleep(0.2)


@asynccontextmanager
async def customer_sync_running(
    server: ServerHandle,
    companies: Sequence[Company],
    kafka: KafkaSettings,
    topics: TopicSettings,
    database: DatabaseSettings,
) -> AsyncIterator[RuntimeUnderTest]:
    """The real customer-sync beside invoice-sync: its SyncCompleted results are how invoice-sync learns customers."""
    qbo = QboClient(
        QboClientSettings(base_url=server.base_url), StaticTokenProvider({c.id: (c.realm, c.token) for c in companies})
    )

    def registry_for(publisher: Publisher) -> HandlerRegistry:
        registry = HandlerRegistry()
        customer_handlers.register(registry, CustomerSync(qbo, publisher, service="customer-sync", runtime=PATIENT))
        return registry

    try:
        async with running_runtime(
            service="customer-sync",
            topics=[BATCHLY_CUSTOMERS, BATCHLY_COMMANDS],
            registry_factory=registry_for,
            kafka=kafka,
            topic_settings=topics,
            database=database,
            runtime_settings=PATIENT,
            migration_branches=("runtime", "customer_sync"),
            migration_locations=(customer_store.MIGRATIONS,),
        ) as rt:
            yield rt
    finally:
        await qbo.aclose()


async def _release_when_waiting(
    kafka: Kafka, rt: RuntimeUnderTest, held: list[AnyEnvelope], invoices: list[InvoiceCreated]
) -> None:
    """Publish each held-back customer (twice) once one of its invoices is waiting for it in the retry ladder."""
    pending = {c.entity_id: c for c in held}
    events_of = {customer: {e.event_id for e in invoices if e.payload.customer_id == customer} for customer in pending}
    async with asyncio.timeout(300):
        while pending:
            for customer, event in list(pending.items()):
                statement = (
                    select(func.count())
                    .select_from(sync_ledger)
                    .where(sync_ledger.c.event_id.in_(events_of[customer]), sync_ledger.c.status == "retrying")
                )
                if await _count(rt, statement):
                    await kafka.publish(event, event)
                    del pending[customer]
            await asyncio.sleep(0.1)


def _stream(world: BatchlyWorld, org: uuid.UUID, invoices: int) -> tuple[list[AnyEnvelope], list[AnyEnvelope]]:
    """One organization's day: new customers with their first invoice in the same burst, invoices for existing
    customers, some with rounding-sensitive tax. Returns (events, customers held back to arrive last)."""
    events: list[AnyEnvelope] = []
    held: list[AnyEnvelope] = []
    for n in range(invoices):
        if n % 5 == 0:
            customer, order, invoice = world.new_customer_workflow(org)
            (held if n % 20 == 10 else events).append(customer)
            events += [order, invoice]
        elif n % 4 == 1:
            events.append(world.create_invoice(org, rounding_sensitive=True))
        else:
            events.append(world.create_invoice(org))
    return events, held


@pytest.mark.parametrize(
    ("organizations", "per_organization"),
    [
        pytest.param(3, 40, id="3x40"),
        pytest.param(5, 200, id="5x200", marks=[pytest.mark.slow, pytest.mark.campaign]),
    ],
)
async def test_a_realistic_stream_reaches_quickbooks_exactly_once_and_penny_perfect(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
    organizations: int,
    per_organization: int,
) -> None:
    """Many invoices across organizations on companies with automated sales tax (which rounds tax per line, a cent
    away from Batchly's whole-invoice rounding on the sensitive ones), some invoices arriving before their customer
    is in QuickBooks, every event delivered twice: one QuickBooks invoice per Batchly invoice, numbers, line order,
    customer and totals equal to the cent."""
    world = BatchlyWorld(11, start=datetime.now(UTC) - timedelta(hours=2))
    rng = random.Random(11)
    companies: list[Company] = []
    stream: list[AnyEnvelope] = []
    held: list[AnyEnvelope] = []
    for _ in range(organizations):
        org = world.add_organization(invoice_number_gap_policy="warn").entity_id
        company = Company(emulator_server, organization_id=org)
        company.create_items()
        companies.append(company)
        stream += [company.item_changed(item) for item in DEFAULT_CATALOG[::2]]  # the rest are found by SKU
        events, late = _stream(world, org, per_organization)
        stream += events
        held += late
    invoices = [e for e in stream if isinstance(e, InvoiceCreated)]
    assert held, "the stream holds customers that arrive after their first invoice"
    sensitive = [
        e
        for e in invoices
        if e.payload.tax_percent
        and per_line_tax([ln.amount for ln in e.payload.lines if ln.taxable], e.payload.tax_percent)
        != e.payload.tax_total
    ]
    assert sensitive, "the stream holds rounding-sensitive invoices"

    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka, tiers=len(PATIENT.retry_delays_seconds))
        await kafka.create(*service_topic_names("customer-sync", [BATCHLY_CUSTOMERS, BATCHLY_COMMANDS], 5))
        async with (
            customer_sync_running(emulator_server, companies, kafka_settings, topic_settings, sqlite_database_settings),
            invoice_sync_running(
                emulator_server,
                companies,
                kafka_settings,
                topic_settings,
                sqlite_database_settings,
                runtime=PATIENT,
            ) as rt,
        ):
            await kafka.publish(*with_redeliveries(stream, 1.0, rng, window=50))
            await _release_when_waiting(kafka, rt, held, invoices)
            await _wait_documents(rt, "synced", len(invoices), timeout=600)
            await _wait_completed(rt, {e.event_id for e in invoices})
            ledger = [r for r in await rt.ledger_rows() if r.event_type == "InvoiceCreated"]
            retried = {r.event_id for r in ledger if any(a.outcome == "retry" for a in await rt.attempts(r.id))}

    assert len(ledger) == len(invoices), "one ledger row per invoice event, redeliveries de-duplicated"
    assert {r.status for r in ledger} == {"completed"}
    assert not any(r.needs_review for r in ledger), "post-sync verification found QuickBooks equal to Batchly"
    assert not [w for r in ledger for w in (r.warnings or []) if w["code"].startswith("mismatch_")]
    for customer in held:  # each late customer was released only once one of its invoices waited in the ladder
        assert any(e.event_id in retried for e in invoices if e.payload.customer_id == customer.entity_id)
    assert {r.action for r in ledger} == {"created"}
    for company in companies:
        _assert_books_match(company, [e for e in invoices if e.organization_id == company.id], world)


def _assert_books_match(company: Company, invoices: list[InvoiceCreated], world: BatchlyWorld) -> None:
    rows = company.invoices()
    counts = Counter(r["DocNumber"] for r in rows)
    assert sorted(counts) == sorted(e.payload.invoice_number for e in invoices)
    assert set(counts.values()) == {1}, "exactly one QuickBooks invoice per Batchly invoice"
    customers = {c["DisplayName"]: c["Id"] for c in company.rows("Customer")}
    by_number = {r["DocNumber"]: r for r in rows}
    for event in invoices:
        invoice = event.payload
        row = by_number[invoice.invoice_number]
        assert Decimal(str(row["TotalAmt"])) == invoice.total, invoice.invoice_number
        assert Decimal(str(row["TxnTaxDetail"]["TotalTax"])) == invoice.tax_total, invoice.invoice_number
        name = world.customer(invoice.customer_id).payload.display_name.strip()
        assert row["CustomerRef"]["value"] == customers[name]
        assert row["DueDate"] == invoice.due_date.isoformat()
        expected = [(company.items[ln.sku or ""], ln.amount, ln.quantity) for ln in invoice.lines]
        actual = [
            (
                ln["SalesItemLineDetail"]["ItemRef"]["value"],
                Decimal(str(ln["Amount"])),
                Decimal(str(ln["SalesItemLineDetail"]["Qty"])),
            )
            for ln in item_lines(row)
        ]
        assert actual == expected, f"{invoice.invoice_number}: lines in Batchly's order"


async def test_a_parked_backlog_of_300_invoices_syncs_through_batch_requests_without_a_429(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    """The organization was disconnected while 300 invoices arrived (they parked); on reconnect they come back at
    once. The company's budget is tight (5 batch requests per 4 s window): the micro-batcher packs them 30 to a
    request and the client's limiter keeps under the budget, so QuickBooks never answers 429."""
    httpx.put(
        f"{emulator_server.base_url}/_admin/limits",
        json={"window_s": 4, "requests_per_window": 60, "batch_requests_per_window": 5},
        timeout=10,
    ).raise_for_status()
    co = Company(emulator_server)
    catalog = DEFAULT_CATALOG[:6]
    co.create_items(catalog)
    # room for one full batch on its way and the next one filling (see InvoiceSyncSettings.batch_concurrency)
    runtime = PATIENT.model_copy(update={"max_in_flight_per_partition": 60})
    budget = QboClientSettings(
        base_url=emulator_server.base_url, window_s=4, requests_per_window=50, batch_requests_per_window=4
    )
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka, tiers=len(runtime.retry_delays_seconds))
        async with invoice_sync_running(
            emulator_server,
            [co],
            kafka_settings,
            topic_settings,
            sqlite_database_settings,
            runtime=runtime,
            settings=InvoiceSyncSettings(batching_enabled=True, batch_window_ms=50),
            qbo_settings=budget,
        ) as rt:
            customer, _ = await link_customer(kafka, rt, co)
            now = datetime.now(UTC)
            lost = QboConnectionLost(
                event_id=uuid.uuid4(),
                event_type="QboConnectionLost",
                schema_version=1,
                occurred_at=now,
                organization_id=co.id,
                entity_id=co.id,
                entity_version=int(now.timestamp() * 1000),
                payload=QboConnectionLostPayload(reason="refresh_failed", message="refresh token expired", lost_at=now),
            )
            await kafka.publish(lost)
            await asyncio.sleep(1.0)  # the connection event is on its own topic: let it land first
            backlog = [
                invoice_created(
                    co,
                    invoice_payload(
                        co, customer, f"INV-{n:06d}", lines_of(co, [(catalog[n % 6], "2"), (catalog[(n + 1) % 6], "1")])
                    ),
                )
                for n in range(1, 301)
            ]
            await kafka.publish(*backlog)
            parked = select(func.count()).select_from(sync_ledger).where(sync_ledger.c.status == "parked")
            async with asyncio.timeout(120):
                while await _count(rt, parked) < 300:
                    await asyncio.sleep(0.2)
            assert co.invoices() == [], "nothing reached QuickBooks while disconnected"
            await kafka.publish(qbo_connected(co.id))
            await _wait_documents(rt, "synced", 300, timeout=240)
            await _wait_completed(rt, {e.event_id for e in backlog})
            ledger = [r for r in await rt.ledger_rows() if r.event_type == "InvoiceCreated"]

    assert len(ledger) == 300
    assert {r.status for r in ledger} == {"completed"}
    assert sorted(r["DocNumber"] for r in co.invoices()) == [f"INV-{n:06d}" for n in range(1, 301)]
    stats = co.stats()
    assert stats["throttled"] == 0
    assert "429" not in stats["by_status"]
    assert stats["by_operation"].get("create", 0) == 0, "every invoice went out in a batch request"
    assert 10 <= stats["by_operation"]["batch"] <= 30, "at least 10 invoices per request on average"


async def test_sync_all_unsent_invoices_sends_the_backlog_in_batches_and_reports_each_invoice(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    co = Company(emulator_server)
    catalog = DEFAULT_CATALOG[:4]
    co.create_items(catalog)
    customer = uuid.uuid4()  # not in QuickBooks yet: every invoice fails through the ladder (dependency)
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka, tiers=2)
        async with invoice_sync_running(
            emulator_server, [co], kafka_settings, topic_settings, sqlite_database_settings
        ) as rt:
            unsent = [
                invoice_created(
                    co, invoice_payload(co, customer, f"INV-{n:06d}", lines_of(co, [(catalog[n % 4], "3")]))
                )
                for n in range(1, 66)
            ]
            broken = invoice_created(
                co, invoice_payload(co, customer, "INV-000066", lines_of(co, [(DEFAULT_CATALOG[30], "1")]))
            )
            await kafka.publish(*unsent, broken)
            failed = await outcomes(kafka, [*unsent, broken], timeout=120)
            assert {f["payload"]["error_class"] for f in failed.values()} == {"dependency", "permanent"}
            assert co.invoices() == []

            await kafka.publish(co.customer_linked(customer, co.create_customer("Finally Synced")))
            await wait_linked(rt, co, customer)
            command = co.envelope(SyncAllUnsentInvoicesRequested, co.id, SyncScopePayload(requested_by="batchly-ui"))
            await kafka.publish(command, command)
            done = (await outcomes(kafka, [command]))[command.event_id]
            assert done["payload"]["warnings"] == [
                {"code": "bulk_summary", "message": "65 synced, 1 failed, 0 waiting (of 66)"}
            ]
            children = [r for r in await rt.ledger_rows() if r.event_type == "SyncAllUnsentInvoicesRequested"]

    per_invoice = [r for r in children if r.event_id != command.event_id]
    assert Counter(r.status for r in per_invoice) == {"completed": 65, "failed": 1}
    assert next(r for r in per_invoice if r.status == "failed").error_message.startswith(
        f'Item "{DEFAULT_CATALOG[30].sku}" not found'
    )
    assert sorted(r["DocNumber"] for r in co.invoices()) == [f"INV-{n:06d}" for n in range(1, 66)]
    stats = co.stats()["by_operation"]
    assert stats.get("batch") == 3, "65 invoices in batches of 30"
    assert stats.get("create", 0) == 0
