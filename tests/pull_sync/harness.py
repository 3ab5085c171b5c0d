"""pull-sync under test: its real composition root (``app.build``) on a real broker and database, the QBO emulator
over HTTP acting as the accountant, and the webhook route served on 127.0.0.1 so the emulator can call it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from pull_sync import app, store
from pull_sync.deps import Clock, system_clock
from qbo_emulator.accounting import Accounting
from qbo_emulator.admin.common import write_as_accountant
from qbo_emulator.entities import BY_NAME
from qbsync.contracts.batchly import OrganizationPayload
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.outbound import (
    QboConnected,
    QboConnectedPayload,
    SyncCompleted,
    SyncCompletedPayload,
)
from qbsync.observability.http import HttpServer, build_app
from qbsync.persistence import Database, upgrade
from qbsync.persistence.organizations import upsert_organization
from qbsync.persistence.tables import connection_status, sync_ledger
from qbsync.qbo import QboClientSettings, StaticTokenProvider
from qbsync.runtime import ConsumerRuntime, HandlerRegistry, Publisher
from qbsync.service import ServiceContext, ServiceParts
from qbsync.settings import (
    DatabaseSettings,
    HttpSettings,
    KafkaSettings,
    PullSyncSettings,
    RuntimeSettings,
    Settings,
    TopicSettings,
)
from qbsync.topics import BATCHLY_COMMANDS, QBSYNC_CHANGES, service_topics
from tests.fixtures.emulator import ServerHandle
from tests.integration.harness import Kafka, service_topic_names, wait_for

SERVICE = "pull-sync"
RUNTIME = RuntimeSettings(
    retry_delays_seconds=(0.5, 1.0),
    commit_interval_ms=50,
    shutdown_grace_seconds=5,
    outcome_retry_initial_seconds=0.05,
    outcome_retry_max_seconds=0.5,
    handler_timeout_seconds=90,
)


class FakeClock:
    """The business clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when


class Books:
    """One Batchly organization and its emulator company, driven the way the accountant would."""

    def __init__(self, server: ServerHandle, *, name: str = "Pull Co", timezone: str = "America/Los_Angeles") -> None:
        self.org = uuid.uuid4()
        self.server = server
        self.timezone = timezone
        self.realm = server.create_company(name=name)
        self.token = server.issue_tokens(self.realm)["access_token"]
        self.http = httpx.AsyncClient(base_url=f"{server.base_url}/_admin", timeout=30)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(f"/companies/{self.realm}{path}", json=body)
        assert response.status_code < 300, response.text
        result: dict[str, Any] = response.json()
        return result

    async def write(self, entity: str, body: dict[str, Any], operation: str = "create") -> dict[str, Any]:
        result = await self._post("/accountant/write", {"entity": entity, "operation": operation, "body": body})
        row: dict[str, Any] = result[entity]
        return row

    async def rows(self, entity: str) -> list[dict[str, Any]]:
        response = await self.http.get(f"/companies/{self.realm}/entities/{entity}")
        response.raise_for_status()
        return list(response.json()[entity])

    async def id_of(self, entity: str, name: str) -> str:
        return next(str(r["Id"]) for r in await self.rows(entity) if name in (r.get("Name"), r.get("DisplayName")))

    async def customer(self, name: str) -> str:
        return str((await self.write("Customer", {"DisplayName": name}))["Id"])

    async def invoice(self, customer_id: str, number: str, amount: str, *, due: date) -> dict[str, Any]:
        line = {
            "DetailType": "SalesItemLineDetail",
            "Amount": float(amount),
            "SalesItemLineDetail": {
                "ItemRef": {"value": await self.id_of("Item", "Services")},
                "Qty": 1,
                "UnitPrice": float(amount),
                "TaxCodeRef": {"value": "NON"},
            },
        }
        body = {"CustomerRef": {"value": customer_id}, "DocNumber": number, "DueDate": due.isoformat(), "Line": [line]}
        return await self.write("Invoice", body)

    async def pay(
        self, customer_id: str, invoice_id: str, amount: str, *, method: str | None = None, on: date | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"customer_id": customer_id, "amount": float(amount), "invoice_id": invoice_id}
        if method:
            body["payment_method_id"] = await self.id_of("PaymentMethod", method)
        if on:
            body["txn_date"] = on.isoformat()
        result = await self._post("/accountant/payments", body)
        payment: dict[str, Any] = result["Payment"]
        return payment

    async def subscribe(self, url: str, fmt: str) -> None:
        body = {"url": url, "format": fmt, "realm_ids": [self.realm], "entities": ["Invoice", "Payment", "Item"]}
        response = await self.http.post("/webhooks", json=body)
        assert response.status_code == 201, response.text

    async def stats(self) -> dict[str, Any]:
        response = await self.http.get(f"/companies/{self.realm}/stats")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def bulk(self, action: Callable[[Accounting], Any], times: int) -> None:
        """Many accountant writes at once, on the emulator's own loop (far faster than one HTTP call each)."""

        def run() -> None:
            company = self.server.core.companies[self.realm]
            for _ in range(times):
                write_as_accountant(self.server.core, company, action)

        self.server.call(run)

    def create_item(self, acc: Accounting, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = acc.create(BY_NAME["Item"], body)
        return result


@dataclass
class PullSyncUnderTest:
    db: Database
    publisher: Publisher
    runtime: ConsumerRuntime
    parts: ServiceParts
    webhook_url: str
    books: list[Books]
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def ledger(self, event_id: uuid.UUID) -> Any:
        async with self.db.connect() as conn:
            return (await conn.execute(select(sync_ledger).where(sync_ledger.c.event_id == event_id))).first()

    async def finished(self, event_id: uuid.UUID, timeout: float = 60) -> Any:
        """The ledger row of an event once it reached a terminal state (or parked)."""

        async def done() -> Any:
            row = await self.ledger(event_id)
            return row if row is not None and row.status in ("completed", "failed", "ignored", "parked") else None

        return await wait_for(done, timeout=timeout)


def settings_for(
    server: ServerHandle,
    kafka: KafkaSettings,
    topics: TopicSettings,
    database: DatabaseSettings,
    pull: PullSyncSettings,
) -> Settings:
    return Settings(
        kafka=kafka,
        topics=topics,
        database=database,
        runtime=RUNTIME,
        http=HttpSettings(port=0),
        qbo=QboClientSettings(base_url=server.base_url, backoff_initial_s=0.05, backoff_max_s=0.2),
        pull_sync=pull,
    )


async def create_topics(kafka: Kafka) -> None:
    names = [*service_topic_names(SERVICE, list(service_topics(SERVICE)), 2), QBSYNC_CHANGES, BATCHLY_COMMANDS]
    await kafka.create(*dict.fromkeys(names))


@asynccontextmanager
async def pull_sync_running(
    server: ServerHandle,
    books: list[Books],
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    database: DatabaseSettings,
    *,
    pull: PullSyncSettings | None = None,
    clock: Clock = system_clock,
    background: bool = True,
) -> AsyncIterator[PullSyncUnderTest]:
    """pull-sync as its composition root builds it; every organization in ``books`` connected."""
    settings = settings_for(server, kafka_settings, topic_settings, database, pull or PullSyncSettings())
    db = await Database.open(SERVICE, database)
    await upgrade(db, ("runtime", "pull_sync"), version_locations=(store.MIGRATIONS,))
    publisher = Publisher(kafka_settings, client_id=SERVICE, topic_prefix=topic_settings.prefix)
    await publisher.start()
    registry = HandlerRegistry()
    tokens = StaticTokenProvider({b.org: (b.realm, b.token) for b in books})
    parts = await app.build(ServiceContext(SERVICE, settings, db, publisher, registry), tokens, clock)
    runtime = ConsumerRuntime(
        service=SERVICE,
        registry=registry,
        db=db,
        publisher=publisher,
        kafka=kafka_settings,
        settings=RUNTIME,
        resources=parts.resources,
    )
    http = HttpServer(build_app(SERVICE, {}, routes=parts.routes), host="127.0.0.1", port=0)
    await runtime.start()
    await http.start()
    under_test = PullSyncUnderTest(
        db, publisher, runtime, parts, f"http://127.0.0.1:{http.port}{settings.pull_sync.webhook_path}", books
    )
    try:
        async with Kafka(kafka_settings, topic_settings) as kafka:
            for book in books:
                await kafka.publish(connected(book))
                async with db.transaction() as conn:
                    await upsert_organization(
                        conn,
                        OrganizationPayload(organization_id=book.org, name="Org", timezone=book.timezone),
                        version=1,
                        now=datetime.now(UTC),
                    )
        await wait_for(lambda: _all_connected(db, books), timeout=30)
        if background:
            under_test.tasks = [asyncio.create_task(job()) for job in parts.background]
        yield under_test
    finally:
        for task in under_test.tasks:
            task.cancel()
        await asyncio.gather(*under_test.tasks, return_exceptions=True)
        await runtime.stop()
        await http.stop()
        for close in reversed(parts.closers):
            with contextlib.suppress(Exception):
                await close()
        await publisher.stop()
        await db.close()


async def _all_connected(db: Database, books: list[Books]) -> bool:
    async with db.connect() as conn:
        rows = (await conn.execute(select(connection_status.c.organization_id))).all()
    return {b.org for b in books} <= {r.organization_id for r in rows}


def connected(book: Books) -> QboConnected:
    now = datetime.now(UTC)
    return QboConnected(
        event_id=uuid.uuid4(),
        event_type="QboConnected",
        schema_version=1,
        occurred_at=now,
        organization_id=book.org,
        entity_id=book.org,
        entity_version=int(now.timestamp() * 1000),
        payload=QboConnectedPayload(realm_id=book.realm, environment="emulator", connected_at=now),
    )


def invoice_synced(org: uuid.UUID, invoice_id: uuid.UUID, qbo_id: str, number: str) -> SyncCompleted:
    """What invoice-sync publishes when it put an invoice into QuickBooks."""
    return SyncCompleted(
        event_id=uuid.uuid4(),
        event_type="SyncCompleted",
        schema_version=1,
        occurred_at=datetime.now(UTC),
        organization_id=org,
        entity_id=invoice_id,
        entity_version=1,
        payload=SyncCompletedPayload(
            service="invoice-sync",
            source_event_id=uuid.uuid4(),
            source_event_type="InvoiceCreated",
            entity_type="invoice",
            attempt=1,
            max_attempts=3,
            action="created",
            qbo_id=qbo_id,
            qbo_doc_number=number,
        ),
    )


def command(kind: type[AnyEnvelope], org: uuid.UUID, **payload: Any) -> AnyEnvelope:
    """A Batchly command ("Sync Items Now", ...); entity_id is the organization."""
    payload_type = kind.model_fields["payload"].annotation
    assert payload_type is not None
    return kind(
        event_id=uuid.uuid4(),
        event_type=kind.__name__,
        schema_version=1,
        occurred_at=datetime.now(UTC),
        organization_id=org,
        entity_id=org,
        entity_version=1,
        payload=payload_type(**payload),
    )


async def changes(
    kafka: Kafka, event_type: str, *, at_least: int, org: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """Every ``event_type`` record on qbsync.changes (for ``org``), once there are ``at_least`` of them."""
    found: list[dict[str, Any]] = []

    async def enough() -> bool:
        nonlocal found
        total = sum((await kafka.end_offsets(QBSYNC_CHANGES)).values())
        records = await kafka.read(QBSYNC_CHANGES, expect=total, timeout=30) if total else []
        documents = [json.loads(r.value or b"") for r in records]
        found = [
            d for d in documents if d["event_type"] == event_type and (org is None or d["organization_id"] == str(org))
        ]
        return len(found) >= at_least

    await wait_for(enough, timeout=60, interval=0.3)
    return found


def money(value: str) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def in_days(days: int) -> date:
    return datetime.now(UTC).date() + timedelta(days=days)
