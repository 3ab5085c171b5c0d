"""Everything a document needs to be written: its customer's and items' QuickBooks ids, the company's preferences,
terms, payment methods and bank account.

Customer and item ids are *learnt from events* (customer-sync's results, pull-sync's item changes) and kept in our
tables; a customer not linked yet is "not ready" (the retry ladder: its sync is in flight), an item unknown to
QuickBooks is a clear permanent failure with the seed's resolution. Company facts are read from QuickBooks once per
organization and cached for ``reference_ttl_seconds`` (one request per organization however many invoices ask).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from invoice_sync import store
from invoice_sync.config import InvoiceSyncSettings
from qbsync.contracts.batchly import DocumentLine
from qbsync.domain.invoices import ordered_lines
from qbsync.domain.payments import method_candidates
from qbsync.persistence.database import Database
from qbsync.persistence.organizations import OrganizationSettings, get_organization
from qbsync.qbo import QboClient, QboQuery
from qbsync.runtime import DependencyNotReady, PermanentError

__all__ = [
    "CUSTOM_NUMBERS_HINT",
    "ITEM_HINT",
    "CompanyFacts",
    "InLookup",
    "Known",
    "References",
    "TtlCache",
]

K = TypeVar("K")
V = TypeVar("V")

ITEM_HINT = (
    "Create the item in QuickBooks, run item sync (Sync Items Now), then retry this invoice "
    "(or create the item in Batchly, sync it to QuickBooks, and retry)."
)
CUSTOMER_HINT = "Sync the customer to QuickBooks (Sync to QB on the customer), then retry."
CUSTOM_NUMBERS_HINT = (
    "QuickBooks Settings -> Sales -> Custom transaction numbers: On (Batchly sets the invoice numbers), then retry."
)


class TtlCache(Generic[K, V]):
    """A small per-key cache with expiry and single flight (concurrent misses of one key share one load)."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._values: dict[K, tuple[float, V]] = {}
        self._locks: dict[K, asyncio.Lock] = {}

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        hit = self._fresh(key)
        if hit is not None:
            return hit[0]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._fresh(key)
            if hit is not None:
                return hit[0]
            value = await load()
            self._values[key] = (self._clock() + self._ttl, value)
            return value

    def _fresh(self, key: K) -> tuple[V] | None:
        entry = self._values.get(key)
        if entry is None or entry[0] <= self._clock():
            return None
        return (entry[1],)

    def forget(self, key: K) -> None:
        self._values.pop(key, None)


class InLookup:
    """Looks rows of one entity up by one property, coalescing: every value asked for within ``window_s`` (per
    organization) goes into one ``prop IN (...)`` query.

    A new company's first invoices each miss a few SKUs and a term at once; asked one by one (4 requests in flight,
    invoice-sync's share of QBO's 10) they cost several round trips before the first batch can leave. Coalesced they
    cost one. A lone value is asked with ``=`` (every entity and property that can be filtered supports it).
    Matching is case-insensitive, as QBO's is; the row with the lowest Id wins.
    """

    CHUNK = 50  # values per query: well inside QBO's query length

    def __init__(self, qbo: QboClient, entity: str, prop: str, *, window_s: float = 0.01) -> None:
        self.qbo = qbo
        self.entity = entity
        self.prop = prop
        self.window_s = window_s
        self._pending: dict[UUID, dict[str, asyncio.Future[dict[str, Any] | None]]] = {}
        self._flushing: set[asyncio.Task[None]] = set()

    async def row(self, organization_id: UUID, value: str) -> dict[str, Any] | None:
        loop = asyncio.get_running_loop()
        waiting = self._pending.get(organization_id)
        if waiting is None:  # the first value of a new window: the query leaves when the window closes
            waiting = self._pending[organization_id] = {}
            loop.call_later(self.window_s, self._start_flush, organization_id)
        future = waiting.get(value)
        if future is None:
            future = waiting[value] = loop.create_future()
        return await asyncio.shield(future)  # a caller that gives up does not cancel the others' answer

    def _start_flush(self, organization_id: UUID) -> None:
        task = asyncio.ensure_future(self._flush(organization_id, self._pending.pop(organization_id, {})))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self, organization_id: UUID, waiting: dict[str, asyncio.Future[dict[str, Any] | None]]) -> None:
        try:
            found = await self._query(organization_id, sorted(waiting))
        except asyncio.CancelledError:
            for future in waiting.values():
                future.cancel()
            raise
        except Exception as exc:
            for future in waiting.values():
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # marked retrieved: a waiter that went away must not leave it unretrieved
            return
        for value, future in waiting.items():
            if not future.done():
                future.set_result(found.get(value.casefold()))

    async def _query(self, organization_id: UUID, values: list[str]) -> dict[str, dict[str, Any]]:
        company = self.qbo.company(organization_id)
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(values), self.CHUNK):
            chunk = values[start : start + self.CHUNK]
            query = QboQuery.select(self.entity)
            query = query.where(self.prop, "=", chunk[0]) if len(chunk) == 1 else query.where(self.prop, "IN", chunk)
            async for row in company.query_all(query.order_by("Id")):
                key = str(row.get(self.prop) or "").casefold()
                found.setdefault(key, row)
        return found


@dataclass(frozen=True, slots=True)
class CompanyFacts:
    """What the company's Preferences say about writing sales documents."""

    custom_txn_numbers: bool
    automated_sales_tax: bool
    home_currency: str | None

    @classmethod
    def from_preferences(cls, prefs: dict[str, Any]) -> CompanyFacts:
        sales = prefs.get("SalesFormsPrefs") or {}
        tax = prefs.get("TaxPrefs") or {}
        currency = (prefs.get("CurrencyPrefs") or {}).get("HomeCurrency") or {}
        return cls(
            custom_txn_numbers=bool(sales.get("CustomTxnNumbers", False)),
            automated_sales_tax=bool(tax.get("PartnerTaxEnabled", False)),
            home_currency=currency.get("value") if isinstance(currency, dict) else None,
        )


@dataclass(frozen=True, slots=True)
class Known:
    """A document's references as our tables know them (:meth:`References.known`); a missing one is looked up."""

    organization_id: UUID
    customer_id: UUID
    customer_qbo_id: str | None
    links: dict[UUID, store.ItemLink]
    skus: dict[str, store.ItemLink]
    settings: OrganizationSettings


class References:
    """Resolves a document's references; one per process (its caches are per organization)."""

    def __init__(
        self, qbo: QboClient, settings: InvoiceSyncSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.qbo = qbo
        ttl = settings.reference_ttl_seconds
        self._facts: TtlCache[UUID, CompanyFacts] = TtlCache(ttl, clock)
        self._named: TtlCache[tuple[UUID, str, str], str | None] = TtlCache(ttl, clock)
        self._sku_lookups: TtlCache[tuple[UUID, str], store.ItemLink | None] = TtlCache(
            settings.missing_sku_ttl_seconds, clock
        )
        self._lookups: dict[tuple[str, str], InLookup] = {}
        self._refund_item_name = settings.refund_item_name
        self._refund_account_name = settings.refund_account_name

    # ---- company facts ---------------------------------------------------------------------------------------------
    async def facts(self, organization_id: UUID) -> CompanyFacts:
        async def load() -> CompanyFacts:
            return CompanyFacts.from_preferences(await self.qbo.company(organization_id).preferences())

        return await self._facts.get_or_load(organization_id, load)

    async def require_document_numbers(self, organization_id: UUID, *, currency: str | None = None) -> CompanyFacts:
        """Checked before any write of a numbered document: QuickBooks must keep our numbers (seed "QuickBooks
        Setup Requirements"), and the document's currency must be the company's."""
        facts = await self.facts(organization_id)
        if not facts.custom_txn_numbers:
            self._facts.forget(organization_id)  # the retry after the fix reads the preference again
            raise PermanentError(
                "custom transaction numbers are off in this QuickBooks company: QuickBooks would ignore Batchly's "
                "number and assign its own",
                code="custom_txn_numbers_off",
                hint=CUSTOM_NUMBERS_HINT,
            )
        if currency and facts.home_currency and currency != facts.home_currency:
            raise PermanentError(
                f"the document is in {currency} but the QuickBooks company's home currency is {facts.home_currency}",
                code="currency",
                field="currency",
                hint="Issue the document in the company's home currency.",
            )
        return facts

    # ---- named lists (terms, payment methods, accounts, items) -----------------------------------------------------
    async def _id_by(self, organization_id: UUID, entity: str, prop: str, value: str) -> str | None:
        async def load() -> str | None:
            row = await self._lookup(entity, prop).row(organization_id, value)
            return str(row["Id"]) if row is not None else None

        return await self._named.get_or_load((organization_id, entity, f"{prop}={value}"), load)

    def _lookup(self, entity: str, prop: str) -> InLookup:
        lookup = self._lookups.get((entity, prop))
        if lookup is None:
            lookup = self._lookups[(entity, prop)] = InLookup(self.qbo, entity, prop)
        return lookup

    async def term_id(self, organization_id: UUID, name: str) -> str | None:
        return await self._id_by(organization_id, "Term", "Name", name)

    async def payment_method_id(self, organization_id: UUID, method: str) -> str | None:
        for name in method_candidates(method):
            found = await self._id_by(organization_id, "PaymentMethod", "Name", name)
            if found is not None:
                return found
        return None

    async def refund_account_id(self, organization_id: UUID) -> str | None:
        if self._refund_account_name:
            return await self._id_by(organization_id, "Account", "Name", self._refund_account_name)
        return await self._id_by(organization_id, "Account", "AccountType", "Bank")

    async def refund_item_id(self, organization_id: UUID) -> str | None:
        """The configured refund item, or ``None`` (the caller then books on the refunded document's item)."""
        if not self._refund_item_name:
            return None
        return await self._id_by(organization_id, "Item", "Name", self._refund_item_name)

    # ---- customers and items ---------------------------------------------------------------------------------------
    async def known(
        self, db: Database, organization_id: UUID, customer_id: UUID, lines: Sequence[DocumentLine]
    ) -> Known:
        """Everything our tables know about a document's references, read through one connection.

        One checkout instead of three (item links and SKUs, the customer's link, the organization's settings): every
        invoice asks all of them, and on SQLite each checkout costs round trips to the driver's thread.
        """
        async with db.connect() as conn:
            links, skus = await _stored_items(conn, organization_id, ordered_lines(lines))
            customer = await store.get_customer_link(conn, organization_id, customer_id)
            settings = await get_organization(conn, organization_id)
        return Known(organization_id, customer_id, customer, links, skus, settings)

    async def customer_id(
        self, db: Database, organization_id: UUID, customer_id: UUID, *, known: Known | None = None
    ) -> str:
        """The QuickBooks customer; not linked yet -> ``DependencyNotReady`` (customer-sync's result will arrive)."""
        if known is not None and known.customer_id == customer_id:
            qbo_id = known.customer_qbo_id
        else:
            async with db.connect() as conn:
                qbo_id = await store.get_customer_link(conn, organization_id, customer_id)
        if qbo_id is None:
            raise DependencyNotReady(
                f"customer {customer_id} has no QuickBooks id yet (its sync is pending or failed)",
                code="customer_not_synced",
                hint=CUSTOMER_HINT,
            )
        return qbo_id

    async def item_ids(
        self, db: Database, organization_id: UUID, lines: Sequence[DocumentLine], *, known: Known | None = None
    ) -> tuple[str, ...]:
        """QuickBooks item per line in ``ordered_lines`` order: by link, else by SKU (ours, then QuickBooks')."""
        ordered = ordered_lines(lines)
        if known is not None:
            links, by_sku = known.links, dict(known.skus)
        else:
            async with db.connect() as conn:
                links, by_sku = await _stored_items(conn, organization_id, ordered)
        missing = [sku for sku in _skus_without_link(ordered, links) if sku not in by_sku]
        if missing:  # asked together: one query for them (and for what the invoices beside this one miss)
            found = await asyncio.gather(*(self._item_by_sku(db, organization_id, sku) for sku in missing))
            by_sku.update((sku, link) for sku, link in zip(missing, found, strict=True) if link is not None)
        position = {line.line_number: index for index, line in enumerate(lines)}
        ids: list[str] = []
        for line in ordered:
            link = links.get(line.item_id) or (by_sku.get(line.sku) if line.sku else None)
            field = f"lines[{position[line.line_number]}].item_id"
            label = line.sku or str(line.item_id)
            if link is None:
                raise PermanentError(
                    f'Item "{label}" not found in QuickBooks', code="item_not_found", field=field, hint=ITEM_HINT
                )
            if not link.active:
                raise PermanentError(
                    f'Item "{label}" is inactive in QuickBooks', code="item_inactive", field=field, hint=ITEM_HINT
                )
            ids.append(link.qbo_item_id)
        return tuple(ids)

    async def _item_by_sku(self, db: Database, organization_id: UUID, sku: str) -> store.ItemLink | None:
        """QuickBooks' item with ``sku``, asked for once per organization and SKU however many invoices need it.

        A found item is stored in the table *and* kept in the cache for its TTL: the invoices in flight beside this
        one (dozens at once) read the table before the row was stored, and without the cache each of them asked
        QuickBooks again (the benchmark saw a 100-invoice burst make 47 look-ups for 12 SKUs, doubling its time).
        The table still wins: a SKU it knows never reaches this method.
        """

        async def load() -> store.ItemLink | None:
            row = await self._lookup("Item", "Sku").row(organization_id, sku)
            if row is None:
                return None
            found = store.ItemLink(str(row["Id"]), bool(row.get("Active", True)))
            now = datetime.now(UTC)
            async with db.transaction() as conn:
                await store.upsert_item_sku(
                    conn,
                    organization_id=organization_id,
                    sku=sku,
                    qbo_item_id=found.qbo_item_id,
                    active=found.active,
                    source="sku_lookup",
                    occurred_at=now,
                    now=now,
                )
            return found

        return await self._sku_lookups.get_or_load((organization_id, sku), load)


def _skus_without_link(ordered: Sequence[DocumentLine], links: dict[UUID, store.ItemLink]) -> list[str]:
    """The SKUs of lines whose Batchly item has no QuickBooks link: found by SKU instead."""
    return sorted({line.sku for line in ordered if line.item_id not in links and line.sku})


async def _stored_items(
    conn: AsyncConnection, organization_id: UUID, ordered: Sequence[DocumentLine]
) -> tuple[dict[UUID, store.ItemLink], dict[str, store.ItemLink]]:
    """The item links of the lines, and what our table knows of the SKUs of those without one."""
    links = await store.get_item_links(conn, organization_id, [line.item_id for line in ordered])
    return links, await store.get_item_skus(conn, organization_id, _skus_without_link(ordered, links))
