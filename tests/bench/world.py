"""The benchmark's Batchly: organizations, their customers and invoices, and QuickBooks companies set up like a real
customer's — through the platform's own flows, outside the timed part.

Set-up per organization, as in production: a QuickBooks company with the catalog's items (the accountant's work),
connected through token-manager's OAuth flow; ``OrganizationUpserted``; "Sync Items Now" (pull-sync publishes each
item, invoice-sync learns them); the customers, synced by customer-sync (invoice-sync learns their QuickBooks ids from
its results). Only then are the invoices published and the clock started.

Invoices come from :class:`qbsync.simulate.BatchlyWorld`: realistic lines (1-8 from the catalog), tax at the
customer's city rate, terms, memos, numbers in sequence per organization.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from qbsync.contracts.batchly import CustomerCreated, InvoiceCreated, OrganizationUpserted
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.domain.invoices import DocumentRefs, invoice_body, ordered_lines
from qbsync.simulate import DEFAULT_CATALOG, BatchlyWorld, CatalogItem, WorldConfig
from qbsync.topics import QBSYNC_CHANGES, QBSYNC_SYNC_RESULTS
from qbsync_cli.ops.manual import command_for
from tests.bench.kafka import ResultCollector, publish, wait_consumed
from tests.bench.stack import BenchStack

__all__ = ["CATALOG", "BaselineCompany", "BenchOrg", "BenchWorld", "baseline_company", "set_up_platform"]

#: The items every benchmark company sells (a bakery's dozen; invoices draw 1-8 lines from them).
CATALOG: tuple[CatalogItem, ...] = tuple(DEFAULT_CATALOG[:12])
_SETUP_TIMEOUT_S = 600.0


@dataclass
class BenchOrg:
    event: OrganizationUpserted
    customers: list[CustomerCreated] = field(default_factory=list)
    realm: str = ""

    @property
    def id(self) -> UUID:
        return self.event.entity_id


@dataclass
class BenchWorld:
    """Organizations with customers; invoices are drawn on demand, interleaved across organizations."""

    world: BatchlyWorld
    orgs: list[BenchOrg]

    @classmethod
    def build(cls, *, seed: int, organizations: int, customers_per_org: int) -> BenchWorld:
        world = BatchlyWorld(seed, start=datetime.now(UTC), catalog=CATALOG, config=WorldConfig())
        orgs = [
            # "warn" is the default gap policy; "block" would make concurrent invoices wait for their predecessors.
            BenchOrg(world.add_organization(invoice_number_gap_policy="warn", customer_update_mode="immediate"))
            for _ in range(organizations)
        ]
        for org in orgs:
            org.customers = [world.create_customer(org.id) for _ in range(customers_per_org)]
        return cls(world, orgs)

    def invoices(self, per_org: int, orgs: Sequence[BenchOrg] | None = None) -> list[InvoiceCreated]:
        """``per_org`` new invoices for each organization, round-robin (how a busy morning interleaves them)."""
        chosen = list(orgs or self.orgs)
        return [self.world.create_invoice(org.id) for _ in range(per_org) for org in chosen]


def create_company(stack: BenchStack, name: str) -> str:
    """A QuickBooks company with the catalog's items, as the accountant set it up. Returns its realm id."""
    realm = str(stack.admin("POST", "/companies", json={"name": name})["realm_id"])
    accounts = stack.admin("GET", f"/companies/{realm}/entities/Account")["Account"]
    by_name = {a["Name"]: a["Id"] for a in accounts}
    for item in CATALOG:
        body = item.qbo_item_body(by_name)
        stack.admin(
            "POST",
            f"/companies/{realm}/accountant/write",
            json={"entity": "Item", "operation": "create", "body": body},
        )
    return realm


async def set_up_platform(stack: BenchStack, bench: BenchWorld, *, timeout_s: float = _SETUP_TIMEOUT_S) -> None:
    """Companies, connections, items and customers through the platform's own flows (see the module docstring).

    Needs token-manager, customer-sync, invoice-sync and pull-sync running. Returns when invoice-sync has read every
    item and customer result, so the timed part starts with a platform that knows its references.
    """
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=4) as pool:
        realms = await asyncio.gather(
            *(loop.run_in_executor(pool, create_company, stack, org.event.payload.name) for org in bench.orgs)
        )
        for org, realm in zip(bench.orgs, realms, strict=True):
            org.realm = realm
        # One at a time: the emulator's consent step names the realm the *next* authorization grants, so two flows
        # at once could each land on the other's company (seen: the bulk's stats reported under the seed test's).
        for org in bench.orgs:
            await loop.run_in_executor(pool, stack.connect, org.id, org.realm)
    organizations: list[AnyEnvelope] = [org.event for org in bench.orgs]
    items = [command_for("items", org.id, everything=True, requested_by="bench") for org in bench.orgs]
    customers: list[AnyEnvelope] = [c for org in bench.orgs for c in org.customers]
    async with ResultCollector(stack.bootstrap, stack.prefix) as results:
        await publish(stack.bootstrap, stack.prefix, organizations)
        await publish(stack.bootstrap, stack.prefix, [*items, *customers])
        wanted = {e.event_id for e in [*items, *customers]}
        await results.wait_for(wanted, timeout_s=timeout_s, what="set-up events (items, customers)")
        failed = [r for i, r in results.results.items() if i in wanted and r.event_type != "SyncCompleted"]
        if failed:
            raise RuntimeError(f"{len(failed)} set-up event(s) failed, e.g. {failed[0]}")
    topics = [stack.prefix + QBSYNC_SYNC_RESULTS, stack.prefix + QBSYNC_CHANGES]
    # A service's Kafka group id carries the topic prefix, as its topics do.
    await wait_consumed(stack.bootstrap, stack.prefix + "qbsync.invoice-sync", topics, timeout_s=timeout_s)


# ---- the baselines' company: the same catalog and customers, written directly ------------------------------------
@dataclass(frozen=True)
class BaselineCompany:
    """A company for a baseline: its realm and the QuickBooks ids a Batchly-side integration would have stored."""

    realm: str
    customers: dict[UUID, str]
    items: dict[str, str]
    terms: dict[str, str]

    def body(self, event: InvoiceCreated) -> dict[str, Any]:
        """The same QuickBooks invoice qbsync writes (``qbsync.domain.invoices.invoice_body``)."""
        invoice = event.payload
        refs = DocumentRefs(
            self.customers[invoice.customer_id],
            tuple(self.items[line.sku or ""] for line in ordered_lines(invoice.lines)),
            self.terms.get(invoice.terms or ""),
        )
        return invoice_body(invoice, refs)


def baseline_company(stack: BenchStack, org: BenchOrg, name: str) -> BaselineCompany:
    """A fresh company with the catalog and ``org``'s customers (created directly: the baselines start synced)."""
    realm = create_company(stack, name)
    customers = {}
    for customer in org.customers:
        body = {"DisplayName": customer.payload.display_name.strip()}
        written = stack.admin(
            "POST",
            f"/companies/{realm}/accountant/write",
            json={"entity": "Customer", "operation": "create", "body": body},
        )
        customers[customer.entity_id] = str(written["Customer"]["Id"])
    rows = stack.admin("GET", f"/companies/{realm}/entities/Item")["Item"]
    items = {str(row["Sku"]): str(row["Id"]) for row in rows if row.get("Sku")}
    terms = {row["Name"]: str(row["Id"]) for row in stack.admin("GET", f"/companies/{realm}/entities/Term")["Term"]}
    return BaselineCompany(realm, customers, items, terms)
