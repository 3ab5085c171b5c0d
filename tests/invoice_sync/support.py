"""Helpers for invoice-sync's runtime tests: an emulator company per organization, events, and the running service."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx

from invoice_sync import handlers, store
from invoice_sync.app import build_use_cases
from invoice_sync.config import InvoiceSyncSettings
from qbsync.contracts.batchly import (
    CreditMemoCreated,
    CreditMemoPayload,
    DocumentLine,
    InvoiceCreated,
    InvoicePayload,
    InvoiceVoided,
    InvoiceVoidedPayload,
    OrganizationPayload,
    PaymentApplication,
    PaymentRecorded,
    PaymentRecordedPayload,
    RefundIssued,
    RefundIssuedPayload,
)
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.outbound import ItemChanged, ItemChangedPayload, SyncCompleted, SyncCompletedPayload
from qbsync.persistence import Database
from qbsync.persistence.organizations import upsert_organization
from qbsync.qbo import QboClient, QboClientSettings, StaticTokenProvider
from qbsync.runtime import HandlerRegistry, Publisher
from qbsync.settings import DatabaseSettings, KafkaSettings, RuntimeSettings, TopicSettings
from qbsync.simulate import DEFAULT_CATALOG, CatalogItem, document_totals, item_id_for, line_amount
from qbsync.topics import (
    BATCHLY_COMMANDS,
    BATCHLY_CREDIT_MEMOS,
    BATCHLY_INVOICES,
    BATCHLY_ORDERS,
    BATCHLY_PAYMENTS,
    QBSYNC_CHANGES,
    QBSYNC_SYNC_RESULTS,
)
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

SERVICE = "invoice-sync"
TOPICS = [
    BATCHLY_ORDERS,
    BATCHLY_INVOICES,
    BATCHLY_CREDIT_MEMOS,
    BATCHLY_PAYMENTS,
    BATCHLY_COMMANDS,
    QBSYNC_SYNC_RESULTS,
    QBSYNC_CHANGES,
]
#: Short tiers, enough of them for a customer link that arrives a moment after its invoice.
LADDER = RuntimeSettings(
    retry_delays_seconds=(0.5, 1.0, 2.0),
    commit_interval_ms=50,
    shutdown_grace_seconds=5,
    outcome_retry_initial_seconds=0.05,
    outcome_retry_max_seconds=0.5,
    handler_timeout_seconds=30,
)
BATCHING = InvoiceSyncSettings(batching_enabled=True, batch_window_ms=20)
SINGLE = InvoiceSyncSettings(batching_enabled=False)


class Company:
    """One Batchly organization and its emulator company, with admin shortcuts."""

    def __init__(self, server: ServerHandle, organization_id: uuid.UUID | None = None, **options: Any) -> None:
        self.id = organization_id or uuid.uuid4()
        self.server = server
        self.realm = server.create_company(name=f"Co {self.id.hex[:6]}", **options)
        self.token = server.issue_tokens(self.realm)["access_token"]
        self.items: dict[str, str] = {}
        self.versions: dict[uuid.UUID, int] = {}

    # ---- admin ------------------------------------------------------------------------------------------------------
    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.server.base_url}/_admin{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def rows(self, entity: str) -> list[dict[str, Any]]:
        return list(self._admin("GET", f"/companies/{self.realm}/entities/{entity}").get(entity, []))

    def row(self, entity: str, qbo_id: str) -> dict[str, Any]:
        return dict(self._admin("GET", f"/companies/{self.realm}/entities/{entity}/{qbo_id}")[entity])

    def write(self, entity: str, body: dict[str, Any], operation: str = "create") -> dict[str, Any]:
        result = self._admin(
            "POST",
            f"/companies/{self.realm}/accountant/write",
            json={"entity": entity, "operation": operation, "body": body},
        )
        return dict(result.get(entity, result))

    def stats(self) -> dict[str, Any]:
        return dict(self._admin("GET", f"/companies/{self.realm}/stats"))

    def fault(self, **rule: Any) -> None:
        self._admin("POST", "/faults", json={"realm_id": self.realm, **rule})

    def account_id(self, name: str) -> str:
        return next(str(a["Id"]) for a in self.rows("Account") if a["Name"] == name)

    def create_items(self, catalog: Sequence[CatalogItem] = DEFAULT_CATALOG) -> dict[str, str]:
        """The catalog's items in QuickBooks (SKU, name, price, taxability): SKU -> QuickBooks id."""
        for item in catalog:
            body = {
                "Name": item.name,
                "Sku": item.sku,
                "Type": "Service" if item.item_type == "service" else "NonInventory",
                "UnitPrice": float(item.unit_price),
                "Taxable": item.taxable,
                "IncomeAccountRef": {"value": self.account_id(item.income_account_name)},
            }
            self.items[item.sku] = self.write("Item", body)["Id"]
        return self.items

    def create_customer(self, name: str | None = None, **fields: Any) -> str:
        body = {"DisplayName": name or f"Customer {uuid.uuid4().hex[:8]}", **fields}
        return str(self.write("Customer", body)["Id"])

    def invoices(self) -> list[dict[str, Any]]:
        return self.rows("Invoice")

    # ---- events -----------------------------------------------------------------------------------------------------
    def envelope(self, kind: type[AnyEnvelope], entity_id: uuid.UUID, payload: Any, **extra: Any) -> AnyEnvelope:
        version = self.versions.get(entity_id, 0) + 1
        self.versions[entity_id] = version
        return kind(
            event_id=uuid.uuid4(),
            event_type=kind.__name__,
            schema_version=1,
            occurred_at=datetime.now(UTC),
            organization_id=self.id,
            entity_id=entity_id,
            entity_version=version,
            payload=payload,
            **extra,
        )

    def customer_linked(self, customer_id: uuid.UUID, qbo_id: str) -> SyncCompleted:
        """What customer-sync publishes after syncing a customer."""
        return SyncCompleted(
            event_id=uuid.uuid4(),
            event_type="SyncCompleted",
            schema_version=1,
            occurred_at=datetime.now(UTC),
            organization_id=self.id,
            entity_id=customer_id,
            entity_version=1,
            payload=SyncCompletedPayload(
                service="customer-sync",
                source_event_id=uuid.uuid4(),
                source_event_type="CustomerCreated",
                entity_type="customer",
                attempt=1,
                max_attempts=3,
                action="created",
                qbo_id=qbo_id,
            ),
        )

    def item_changed(self, item: CatalogItem, *, active: bool = True) -> ItemChanged:
        """What pull-sync publishes for a QuickBooks item it matched to a Batchly item."""
        return ItemChanged(
            event_id=uuid.uuid4(),
            event_type="ItemChanged",
            schema_version=1,
            occurred_at=datetime.now(UTC),
            organization_id=self.id,
            entity_id=uuid.uuid4(),
            entity_version=1,
            payload=ItemChangedPayload(
                change="created" if active else "deactivated",
                qbo_item_id=self.items[item.sku],
                name=item.name,
                sku=item.sku,
                qbo_item_type="Service",
                active=active,
                batchly_item_id=item_id_for(self.id, item.sku),
                match="sku",
                qbo_last_updated=datetime.now(UTC),
            ),
        )


def lines_of(company: Company, picks: Sequence[tuple[CatalogItem, str]], *, sku: bool = True) -> list[DocumentLine]:
    """Document lines for ``(item, quantity)`` picks at the catalog price."""
    lines = []
    for position, (item, quantity) in enumerate(picks, start=1):
        qty = Decimal(quantity)
        lines.append(
            DocumentLine(
                line_number=position,
                item_id=item_id_for(company.id, item.sku),
                sku=item.sku if sku else None,
                description=item.description,
                quantity=qty,
                unit_price=item.unit_price,
                amount=line_amount(qty, item.unit_price),
                taxable=item.taxable,
            )
        )
    return lines


def invoice_payload(
    company: Company,
    customer_id: uuid.UUID,
    number: str,
    lines: list[DocumentLine],
    *,
    tax_percent: Decimal | None = Decimal("9.975"),
    terms: str | None = "Net 30",
    memo: str | None = None,
    **overrides: Any,
) -> InvoicePayload:
    totals = document_totals(lines, tax_percent)
    today = date.today()
    fields: dict[str, Any] = {
        "invoice_id": uuid.uuid4(),
        "invoice_number": number,
        "customer_id": customer_id,
        "invoice_date": today,
        "due_date": today + timedelta(days=30),
        "terms": terms,
        "memo": memo,
        "lines": lines,
        "subtotal": totals.subtotal,
        "tax_total": totals.tax,
        "tax_percent": tax_percent,
        "tax_rate_name": "Test rate" if tax_percent else None,
        "total": totals.total,
    }
    return InvoicePayload(**(fields | overrides))


def invoice_created(company: Company, payload: InvoicePayload) -> InvoiceCreated:
    event = company.envelope(InvoiceCreated, payload.invoice_id, payload)
    assert isinstance(event, InvoiceCreated)
    return event


def invoice_voided(company: Company, invoice: InvoicePayload) -> InvoiceVoided:
    payload = InvoiceVoidedPayload(
        invoice_id=invoice.invoice_id,
        invoice_number=invoice.invoice_number,
        voided_at=datetime.now(UTC),
        reason="Entered in error",
    )
    event = company.envelope(InvoiceVoided, invoice.invoice_id, payload)
    assert isinstance(event, InvoiceVoided)
    return event


def credit_memo_created(
    company: Company, invoice: InvoicePayload, lines: list[DocumentLine], number: str
) -> CreditMemoCreated:
    totals = document_totals(lines, invoice.tax_percent)
    payload = CreditMemoPayload(
        credit_memo_id=uuid.uuid4(),
        credit_memo_number=number,
        customer_id=invoice.customer_id,
        invoice_id=invoice.invoice_id,
        credit_date=date.today(),
        lines=lines,
        subtotal=totals.subtotal,
        tax_total=totals.tax,
        total=totals.total,
        memo=f"Credit for {invoice.invoice_number}",
    )
    event = company.envelope(CreditMemoCreated, payload.credit_memo_id, payload)
    assert isinstance(event, CreditMemoCreated)
    return event


def payment_recorded(company: Company, invoice: InvoicePayload, amount: Decimal) -> PaymentRecorded:
    payload = PaymentRecordedPayload(
        payment_id=uuid.uuid4(),
        customer_id=invoice.customer_id,
        amount=amount,
        payment_date=date.today(),
        method="credit_card",
        reference=f"ch_{uuid.uuid4().hex[:24]}",
        applications=[PaymentApplication(invoice_id=invoice.invoice_id, amount=amount)],
    )
    event = company.envelope(PaymentRecorded, payload.payment_id, payload)
    assert isinstance(event, PaymentRecorded)
    return event


def refund_issued(
    company: Company,
    customer_id: uuid.UUID,
    amount: Decimal,
    *,
    invoice_id: uuid.UUID | None = None,
    credit_memo_id: uuid.UUID | None = None,
) -> RefundIssued:
    payload = RefundIssuedPayload(
        refund_id=uuid.uuid4(),
        customer_id=customer_id,
        amount=amount,
        refund_date=date.today(),
        method="credit_card",
        invoice_id=invoice_id,
        credit_memo_id=credit_memo_id,
        reason="Returned items",
        reference=f"re_{uuid.uuid4().hex[:24]}",
    )
    event = company.envelope(RefundIssued, payload.refund_id, payload)
    assert isinstance(event, RefundIssued)
    return event


# ---- the running service -------------------------------------------------------------------------------------------
@asynccontextmanager
async def invoice_sync_running(
    server: ServerHandle,
    companies: Sequence[Company],
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    database: DatabaseSettings,
    *,
    settings: InvoiceSyncSettings = BATCHING,
    runtime: RuntimeSettings = FAST_RUNTIME,
    qbo_settings: QboClientSettings | None = None,
) -> AsyncIterator[RuntimeUnderTest]:
    qbo = QboClient(
        qbo_settings or QboClientSettings(base_url=server.base_url),
        StaticTokenProvider({c.id: (c.realm, c.token) for c in companies}),
    )
    closers = []

    def registry_for(publisher: Publisher) -> HandlerRegistry:
        registry = HandlerRegistry()
        cases, batcher = build_use_cases(qbo, publisher, service=SERVICE, runtime=runtime, settings=settings)
        if batcher is not None:
            closers.append(batcher)
        handlers.register(registry, cases)
        return registry

    try:
        async with running_runtime(
            service=SERVICE,
            topics=TOPICS,
            registry_factory=registry_for,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=database,
            runtime_settings=runtime,
            migration_branches=("runtime", "invoice_sync"),
            migration_locations=(store.MIGRATIONS,),
        ) as rt:
            yield rt
    finally:
        for batcher in closers:
            await batcher.aclose()
        await qbo.aclose()


async def create_topics(kafka: Kafka, *, tiers: int = 3) -> None:
    await kafka.create(*service_topic_names(SERVICE, TOPICS, tiers))


class Results:
    """The sync results published so far, read from the topic's start each time."""

    def __init__(self, kafka: Kafka) -> None:
        self.kafka = kafka
        self.documents: list[dict[str, Any]] = []

    async def read(self, expect: int, timeout: float = 60) -> list[dict[str, Any]]:
        records = await self.kafka.read(QBSYNC_SYNC_RESULTS, expect=expect, timeout=timeout)
        self.documents = [json.loads(r.value or b"") for r in records]
        return self.documents

    def of(self, event: AnyEnvelope) -> list[dict[str, Any]]:
        """Results about ``event`` itself (a bulk command's per-invoice results name it too, with another entity)."""
        return [
            d
            for d in self.documents
            if d["payload"].get("source_event_id") == str(event.event_id) and d["entity_id"] == str(event.entity_id)
        ]

    def final(self, event: AnyEnvelope) -> dict[str, Any] | None:
        terminal = [
            d
            for d in self.of(event)
            if d["event_type"] in ("SyncCompleted", "SyncFailed")
            or (d["event_type"] == "SyncStatusChanged" and d["payload"]["status"] in ("ignored", "pending"))
        ]
        return terminal[-1] if terminal else None


async def outcomes(
    kafka: Kafka, events: Sequence[AnyEnvelope], *, timeout: float = 90
) -> dict[uuid.UUID, dict[str, Any]]:
    """Wait until every event has a terminal result; returns it per event id."""
    results = Results(kafka)
    found: dict[uuid.UUID, dict[str, Any]] = {}
    deadline = datetime.now(UTC) + timedelta(seconds=timeout)
    expect = len(events)
    while True:
        await results.read(expect, timeout=max(1.0, (deadline - datetime.now(UTC)).total_seconds()))
        found = {e.event_id: f for e in events if (f := results.final(e)) is not None}
        if len(found) == len(events):
            return found
        if datetime.now(UTC) > deadline:
            missing = [e.event_type for e in events if e.event_id not in found]
            raise AssertionError(f"no terminal result for {len(missing)} event(s): {missing[:5]}")
        expect = len(results.documents) + 1


def by_doc_number(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(str(row.get("DocNumber")), []).append(row)
    return grouped


def item_lines(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [ln for ln in row.get("Line", []) if ln.get("DetailType") == "SalesItemLineDetail"]


# ---- waiting on the service's own state ------------------------------------------------------------------------------
async def link_customer(kafka: Kafka, rt: RuntimeUnderTest, company: Company, **fields: Any) -> tuple[uuid.UUID, str]:
    """A customer that customer-sync has synced: created in QuickBooks, its result published, the link learnt."""
    customer_id = uuid.uuid4()
    qbo_id = company.create_customer(**fields)
    await kafka.publish(company.customer_linked(customer_id, qbo_id))
    await wait_linked(rt, company, customer_id)
    return customer_id, qbo_id


async def wait_item_linked(rt: RuntimeUnderTest, company: Company, item: CatalogItem) -> None:
    """Until invoice-sync has learnt ``item``'s QuickBooks id from pull-sync's ``ItemChanged``."""

    async def linked() -> bool:
        async with rt.db.connect() as conn:
            return bool(await store.get_item_links(conn, company.id, [item_id_for(company.id, item.sku)]))

    await wait_for(linked, timeout=30)


async def wait_linked(rt: RuntimeUnderTest, company: Company, customer_id: uuid.UUID) -> None:
    async def linked() -> bool:
        async with rt.db.connect() as conn:
            return await store.get_customer_link(conn, company.id, customer_id) is not None

    await wait_for(linked, timeout=30)


async def set_gap_policy(rt: RuntimeUnderTest, company: Company, policy: Literal["warn", "block"]) -> None:
    """The organization's settings (normally from OrganizationUpserted, which the service shell records)."""
    async with rt.db.transaction() as conn:
        await upsert_organization(
            conn,
            OrganizationPayload(organization_id=company.id, name="Test Org", invoice_number_gap_policy=policy),
            version=1,
            now=datetime.now(UTC),
        )


async def document(rt: RuntimeUnderTest, company: Company, kind: str, document_id: uuid.UUID) -> store.Document | None:
    async with rt.db.connect() as conn:
        return await store.get_document(conn, company.id, kind, document_id)


@asynccontextmanager
async def invoice_sync_database(data_dir: Path) -> AsyncIterator[Database]:
    """invoice-sync's SQLite database under ``data_dir``, migrated (runtime + invoice-sync tables), closed after."""
    database = await open_database(
        "invoice-sync",
        DatabaseSettings(data_dir=data_dir),
        branches=("runtime", "invoice_sync"),
        locations=(store.MIGRATIONS,),
    )
    try:
        yield database
    finally:
        await database.close()
