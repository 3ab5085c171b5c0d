"""The demo run: set up QuickBooks companies, connect the organizations, play the days, check every outcome."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx

from qbsync.contracts.batchly import CustomerCreated, InvoiceCreated
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.runtime.kafka import Publisher
from qbsync.settings import Settings
from qbsync.simulate import DEFAULT_CATALOG
from qbsync_cli.demo.scenario import DayPlan, DemoWorld, expected_outcome
from qbsync_cli.demo.tracker import Tracker
from qbsync_cli.ops.manual import command_for

__all__ = ["DemoRun", "Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    what: str


@dataclass
class DemoRun:
    """Everything the demo does against a running stack (emulator at ``emulator_url``, token-manager at ``tm_url``)."""

    settings: Settings
    world: DemoWorld
    emulator_url: str
    tm_url: str
    say: Callable[[str], None]
    tracker: Tracker = field(init=False)
    realms: dict[UUID, str] = field(default_factory=dict)
    expected: dict[UUID, tuple[UUID, str, str]] = field(default_factory=dict)
    paid: dict[UUID, str] = field(default_factory=dict)
    published: int = 0

    def __post_init__(self) -> None:
        self.tracker = Tracker(self.settings)

    # ---- set-up --------------------------------------------------------------------------------------------------
    async def set_up(self, http: httpx.AsyncClient) -> None:
        """A QuickBooks company per organization (with the catalog's items), connected through token-manager."""
        for org in self.world.organizations:
            company = await self._admin(http, "POST", "/companies", json={"name": org.payload.name})
            realm = str(company["realm_id"])
            self.realms[org.entity_id] = realm
            await self._create_catalog(http, realm)
            await self._connect(http, org.entity_id, realm)
            self.say(f"connected {org.payload.name} ({org.entity_id}) to QuickBooks company {realm}")

    async def _create_catalog(self, http: httpx.AsyncClient, realm: str) -> None:
        accounts = await self._admin(http, "GET", f"/companies/{realm}/entities/Account")
        by_name = {a["Name"]: a["Id"] for a in accounts["Account"]}
        for item in DEFAULT_CATALOG:
            body = item.qbo_item_body(by_name)
            await self._admin(
                http,
                "POST",
                f"/companies/{realm}/accountant/write",
                json={"entity": "Item", "operation": "create", "body": body},
            )

    async def _connect(self, http: httpx.AsyncClient, organization_id: UUID, realm: str) -> None:
        """What a person does in a browser: start the connect flow, consent at 'Intuit', land on the callback."""
        await self._admin(http, "POST", "/oauth/consent", json={"realm_id": realm})
        token = self.settings.token_manager.service_token.get_secret_value()
        response = await http.get(
            f"{self.tm_url}/connect/{organization_id}",
            follow_redirects=True,
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code != 200:
            raise RuntimeError(
                f"connecting {organization_id} failed: HTTP {response.status_code} {response.text[:200]}"
            )

    # ---- the days ------------------------------------------------------------------------------------------------
    async def play_day(self, http: httpx.AsyncClient, publisher: Publisher, *, wait_seconds: float) -> list[Problem]:
        """One business day for every organization; returns what did not end as expected."""
        plans = self.world.next_day()
        if self.published == 0:
            await publisher.publish(*self.world.organizations)
        customers = [e for p in plans for e in p.customers]
        self.say(f"{self.world.day}: {len(customers)} new customer(s) created in Batchly")
        await self._publish(publisher, customers)
        problems = await self.wait_for(customers, wait_seconds)
        documents = [e for p in plans for e in p.documents]
        invoices = [e for e in documents if isinstance(e, InvoiceCreated)]
        self.say(
            f"{self.world.day}: {len(documents) - len(invoices)} order(s) approved, {len(invoices)} invoice(s) created"
        )
        await self._publish(publisher, documents)
        problems += await self.wait_for(documents, wait_seconds)
        problems += await self.payments(http, publisher, plans, wait_seconds)
        return problems

    async def _publish(self, publisher: Publisher, events: Sequence[AnyEnvelope]) -> None:
        for event in events:
            outcome = expected_outcome(event)
            if outcome is not None:
                self.expected[event.event_id] = (event.organization_id, event.ENTITY_TYPE, outcome)
        await publisher.publish(*events)
        self.published += len(events)

    async def wait_for(self, events: Sequence[AnyEnvelope], wait_seconds: float) -> list[Problem]:
        wanted = {e.event_id: expected_outcome(e) for e in events if expected_outcome(e) is not None}
        await _until(lambda: all(self._settled(i) for i in wanted), wait_seconds)
        problems: list[Problem] = []
        for event_id, expected in wanted.items():
            got = self.tracker.outcomes.get(event_id)
            if got is None or got.status != expected:
                detail = "no answer" if got is None else f"{got.status} {got.message}".strip()
                problems.append(Problem(f"event {event_id}: expected {expected}, got {detail}"))
        return problems

    def _settled(self, event_id: UUID) -> bool:
        got = self.tracker.outcomes.get(event_id)
        return got is not None and got.status in ("completed", "failed", "ignored")

    # ---- payments ------------------------------------------------------------------------------------------------
    async def payments(
        self, http: httpx.AsyncClient, publisher: Publisher, plans: Sequence[DayPlan], wait_seconds: float
    ) -> list[Problem]:
        """The accountant applies payments to half of the day's invoices (every other one partly); then the
        "Sync Payments Now" command of each organization brings the status back to Batchly."""
        customers = {e.entity_id: e for p in plans for e in p.customers if isinstance(e, CustomerCreated)}
        recorded: dict[UUID, str] = {}
        for plan in plans:
            realm = self.realms[plan.organization_id]
            for index, invoice in enumerate(plan.invoices[::2]):
                status = await self._pay(http, realm, invoice, partial=index % 2 == 1, customers=customers)
                if status is not None:
                    recorded[invoice.payload.invoice_id] = status
        if not recorded:
            return []
        self.say(f"{self.world.day}: the accountant recorded {len(recorded)} payment(s) in QuickBooks")
        for organization_id in self.world.organization_ids:
            await publisher.publish(command_for("payments", organization_id, requested_by="qbsync-demo"))
        await _until(lambda: all(self.tracker.payments.get(i) == s for i, s in recorded.items()), wait_seconds)
        self.paid.update(recorded)
        return [
            Problem(f"invoice {i}: expected payment status {s}, got {self.tracker.payments.get(i, 'nothing')}")
            for i, s in recorded.items()
            if self.tracker.payments.get(i) != s
        ]

    async def _pay(
        self, http: httpx.AsyncClient, realm: str, invoice: InvoiceCreated, *, partial: bool, customers: dict[UUID, Any]
    ) -> str | None:
        invoice_result = self.tracker.outcomes.get(invoice.event_id)
        if invoice_result is None or invoice_result.qbo_id is None or invoice.payload.total <= 0:
            return None
        rows = await self._admin(http, "GET", f"/companies/{realm}/entities/Invoice/{invoice_result.qbo_id}")
        qbo_invoice = rows["Invoice"]
        amount = Decimal(str(qbo_invoice["Balance"]))
        if partial:
            amount = (amount / 2).quantize(Decimal("0.01"))
        if amount <= 0:
            return None
        await self._admin(
            http,
            "POST",
            f"/companies/{realm}/accountant/payments",
            json={
                "customer_id": qbo_invoice["CustomerRef"]["value"],
                "amount": float(amount),
                "invoice_id": invoice_result.qbo_id,
            },
        )
        return "partial" if partial else "paid"

    async def _admin(self, http: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
        response = await http.request(method, f"{self.emulator_url}/_admin{path}", **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None


async def _until(done: Callable[[], bool], wait_seconds: float) -> None:
    """Poll ``done`` (the tracker fills in the background) until it holds or ``wait_seconds`` pass."""
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if done():
            return
        await asyncio.sleep(0.25)
