"""pull-sync's own tables and the reads and writes on them. Every function takes the caller's connection.

* ``invoice_links`` — Batchly invoice <-> QuickBooks invoice, learnt from invoice-sync's ``SyncCompleted``.
* ``invoice_status`` — per QuickBooks invoice: what was last published (fingerprint, version) and the QuickBooks
  facts behind it, so a status can be re-derived without asking QuickBooks (an invoice turning overdue).
* ``invoice_payments`` — which payments each invoice had, so a deleted payment (of which the change feed says only
  its Id) leads back to its invoices.
* ``item_states`` / ``tax_states`` — what was last published per QuickBooks item / tax rate / tax code.
* ``batchly_items`` — Batchly's items (from ``ItemCreated``) for matching by SKU and Name.
* ``pull_watermarks`` — per organization and kind: where the next change-feed read starts, and the last sync time.
* ``schedule_claims`` — one row per organization and schedule slot; the primary key makes a slot run once even
  with several replicas (PostgreSQL shares the table between them).
* ``pull_leases`` — one pull of a kind per organization at a time, across replicas.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    and_,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from qbsync.domain.items import BatchlyItem
from qbsync.persistence.tables import connection_status, organizations
from qbsync.persistence.types import JsonDocument, UtcDateTime

__all__ = [
    "MIGRATIONS",
    "Claim",
    "InvoiceLink",
    "InvoiceState",
    "InvoiceStateRow",
    "StoredState",
    "Watermark",
    "acquire_lease",
    "batchly_catalog",
    "claim_slot",
    "claimed_slots",
    "get_watermark",
    "invoice_links_of",
    "invoice_states",
    "invoices_paid_by",
    "link_invoice",
    "mark_slot_published",
    "metadata",
    "object_states",
    "organizations_for_realms",
    "overdue_candidates",
    "release_lease",
    "remember_batchly_item",
    "save_invoice_states",
    "save_object_states",
    "save_watermark",
    "schedulable_organizations",
    "set_batchly_item_link",
    "unchecked_invoices",
    "unpublished_claims",
]

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

invoice_links = Table(
    "invoice_links",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("invoice_id", Uuid, primary_key=True),
    Column("qbo_invoice_id", String(64), nullable=False),
    Column("doc_number", String(64), nullable=True),
    Column("linked_at", UtcDateTime, nullable=False),
    UniqueConstraint("organization_id", "qbo_invoice_id", name="uq_invoice_links_org_qbo"),
)

invoice_status = Table(
    "invoice_status",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("qbo_invoice_id", String(64), primary_key=True),
    # sent | partial | paid | overdue | cancelled
    Column("status", String(16), nullable=False),
    Column("due_date", Date, nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("version", BigInteger, nullable=False),
    Column("facts", JsonDocument, nullable=False),
    Column("checked_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime, nullable=True),
    Index("ix_invoice_status_org_status_due", "organization_id", "status", "due_date"),
)

invoice_payments = Table(
    "invoice_payments",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("qbo_payment_id", String(64), primary_key=True),
    Column("qbo_invoice_id", String(64), primary_key=True),
)

item_states = Table(
    "item_states",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("qbo_id", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("payload", JsonDocument, nullable=False),
    Column("published_at", UtcDateTime, nullable=False),
)

tax_states = Table(
    "tax_states",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    # rate | code
    Column("kind", String(8), primary_key=True),
    Column("qbo_id", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("payload", JsonDocument, nullable=False),
    Column("published_at", UtcDateTime, nullable=False),
)

batchly_items = Table(
    "batchly_items",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("item_id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("sku", Text, nullable=True),
    Column("entity_version", BigInteger, nullable=False),
    Column("qbo_item_id", String(64), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

pull_watermarks = Table(
    "pull_watermarks",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    # items | payments
    Column("kind", String(16), primary_key=True),
    #: QuickBooks' own time: the next change-feed read starts here.
    Column("changed_since", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("last_full_at", UtcDateTime, nullable=True),
    Column("last_summary", Text, nullable=True),
)

schedule_claims = Table(
    "schedule_claims",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("slot", String(64), primary_key=True),
    Column("job", String(32), nullable=False),
    Column("fire_at", UtcDateTime, nullable=False),
    Column("claimed_at", UtcDateTime, nullable=False),
    Column("claimed_by", String(128), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("published_at", UtcDateTime, nullable=True),
    Index("ix_schedule_claims_unpublished", "published_at", "claimed_at"),
)

pull_leases = Table(
    "pull_leases",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)


def _insert(conn: AsyncConnection, table: Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _upsert(conn: AsyncConnection, table: Table, keys: Sequence[str]) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE`` every other column (execute with a list for many rows)."""
    statement = _insert(conn, table)
    others = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    return statement.on_conflict_do_update(index_elements=[table.c[k] for k in keys], set_=others)


# ---- invoices --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class InvoiceLink:
    invoice_id: UUID
    qbo_invoice_id: str
    doc_number: str | None


@dataclass(frozen=True, slots=True)
class InvoiceState:
    status: str
    fingerprint: str | None
    version: int
    facts: dict[str, Any]


async def link_invoice(
    conn: AsyncConnection, org: UUID, invoice_id: UUID, qbo_invoice_id: str, doc_number: str | None, now: datetime
) -> None:
    """Remember which QuickBooks invoice a Batchly invoice is (a later sync of the same invoice may re-link it)."""
    await conn.execute(
        delete(invoice_links).where(
            invoice_links.c.organization_id == org,
            invoice_links.c.qbo_invoice_id == qbo_invoice_id,
            invoice_links.c.invoice_id != invoice_id,
        )
    )
    await conn.execute(
        _upsert(conn, invoice_links, ["organization_id", "invoice_id"]),
        {
            "organization_id": org,
            "invoice_id": invoice_id,
            "qbo_invoice_id": qbo_invoice_id,
            "doc_number": doc_number,
            "linked_at": now,
        },
    )


async def invoice_links_of(
    conn: AsyncConnection, org: UUID, qbo_ids: Iterable[str] | None = None
) -> dict[str, InvoiceLink]:
    """Links of an organization by QuickBooks invoice id (all, or those of ``qbo_ids``)."""
    query = select(invoice_links).where(invoice_links.c.organization_id == org)
    if qbo_ids is not None:
        query = query.where(invoice_links.c.qbo_invoice_id.in_(list(qbo_ids)))
    rows = await conn.execute(query)
    return {r.qbo_invoice_id: InvoiceLink(r.invoice_id, r.qbo_invoice_id, r.doc_number) for r in rows}


async def invoice_states(conn: AsyncConnection, org: UUID, qbo_ids: Iterable[str]) -> dict[str, InvoiceState]:
    found: dict[str, InvoiceState] = {}
    for chunk in _chunks(qbo_ids):
        rows = await conn.execute(
            select(invoice_status).where(
                invoice_status.c.organization_id == org, invoice_status.c.qbo_invoice_id.in_(chunk)
            )
        )
        found.update({r.qbo_invoice_id: InvoiceState(r.status, r.fingerprint, r.version, dict(r.facts)) for r in rows})
    return found


async def unchecked_invoices(conn: AsyncConnection, org: UUID) -> list[str]:
    """Linked invoices never read since they were linked (their link may have arrived after their changes)."""
    rows = await conn.execute(
        select(invoice_links.c.qbo_invoice_id)
        .select_from(
            invoice_links.outerjoin(
                invoice_status,
                and_(
                    invoice_status.c.organization_id == invoice_links.c.organization_id,
                    invoice_status.c.qbo_invoice_id == invoice_links.c.qbo_invoice_id,
                ),
            )
        )
        .where(invoice_links.c.organization_id == org, invoice_status.c.qbo_invoice_id.is_(None))
    )
    return [r.qbo_invoice_id for r in rows]


async def overdue_candidates(conn: AsyncConnection, org: UUID, today: date) -> list[str]:
    """Invoices last seen unpaid ("sent") whose due date has passed since: they are overdue now."""
    rows = await conn.execute(
        select(invoice_status.c.qbo_invoice_id).where(
            invoice_status.c.organization_id == org,
            invoice_status.c.status == "sent",
            invoice_status.c.due_date < today,
        )
    )
    return [r.qbo_invoice_id for r in rows]


async def invoices_paid_by(conn: AsyncConnection, org: UUID, payment_ids: Iterable[str]) -> list[str]:
    """Invoices that had any of these payments when they were last checked."""
    found: set[str] = set()
    for chunk in _chunks(payment_ids):
        rows = await conn.execute(
            select(invoice_payments.c.qbo_invoice_id).where(
                invoice_payments.c.organization_id == org, invoice_payments.c.qbo_payment_id.in_(chunk)
            )
        )
        found.update(r.qbo_invoice_id for r in rows)
    return sorted(found)


def _chunks(values: Iterable[str], size: int = 1_000) -> Iterator[list[str]]:
    """Bounded ``IN (...)`` lists: both databases cap the number of bound parameters of one statement."""
    wanted = list(dict.fromkeys(values))
    for start in range(0, len(wanted), size):
        yield wanted[start : start + size]


@dataclass(frozen=True, slots=True)
class InvoiceStateRow:
    qbo_invoice_id: str
    status: str
    due_date: date | None
    fingerprint: str | None
    version: int
    facts: dict[str, Any]
    payment_ids: tuple[str, ...]
    published: bool


async def save_invoice_states(conn: AsyncConnection, org: UUID, rows: Sequence[InvoiceStateRow], now: datetime) -> None:
    """Record what was checked (and, for published rows, what was published) plus each invoice's payments."""
    if not rows:
        return
    current = await invoice_states(conn, org, [r.qbo_invoice_id for r in rows])
    values = []
    for row in rows:
        kept = current.get(row.qbo_invoice_id)
        values.append(
            {
                "organization_id": org,
                "qbo_invoice_id": row.qbo_invoice_id,
                "status": row.status,
                "due_date": row.due_date,
                # An unpublished check keeps the fingerprint of what Batchly was last told.
                "fingerprint": row.fingerprint if row.published else (kept.fingerprint if kept else None),
                "version": row.version,
                "facts": row.facts,
                "checked_at": now,
                "published_at": now if row.published else None,
            }
        )
    statement = _insert(conn, invoice_status)
    changing = {
        k: statement.excluded[k] for k in ("status", "due_date", "fingerprint", "version", "facts", "checked_at")
    }
    changing["published_at"] = func.coalesce(statement.excluded.published_at, invoice_status.c.published_at)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[invoice_status.c.organization_id, invoice_status.c.qbo_invoice_id], set_=changing
        ),
        values,
    )
    ids = [r.qbo_invoice_id for r in rows]
    await conn.execute(
        delete(invoice_payments).where(
            invoice_payments.c.organization_id == org, invoice_payments.c.qbo_invoice_id.in_(ids)
        )
    )
    pairs = [
        {"organization_id": org, "qbo_payment_id": pid, "qbo_invoice_id": r.qbo_invoice_id}
        for r in rows
        for pid in dict.fromkeys(r.payment_ids)
    ]
    if pairs:
        await conn.execute(invoice_payments.insert(), pairs)


# ---- items and tax: what was last published --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoredState:
    fingerprint: str
    active: bool
    version: int
    payload: dict[str, Any]


async def object_states(conn: AsyncConnection, org: UUID, *, kind: str) -> dict[str, StoredState]:
    """What was last published per QuickBooks object: ``kind`` is "item", "rate" or "code"."""
    if kind == "item":
        query = select(item_states).where(item_states.c.organization_id == org)
    else:
        query = select(tax_states).where(tax_states.c.organization_id == org, tax_states.c.kind == kind)
    rows = await conn.execute(query)
    return {r.qbo_id: StoredState(r.fingerprint, r.active, r.version, dict(r.payload)) for r in rows}


async def save_object_states(
    conn: AsyncConnection, org: UUID, *, kind: str, states: Mapping[str, StoredState], now: datetime
) -> None:
    if not states:
        return
    common: dict[str, Any] = {"organization_id": org, "published_at": now}
    if kind == "item":
        table, keys = item_states, ["organization_id", "qbo_id"]
    else:
        table, keys = tax_states, ["organization_id", "kind", "qbo_id"]
        common["kind"] = kind
    await conn.execute(
        _upsert(conn, table, keys),
        [
            {
                **common,
                "qbo_id": qbo_id,
                "fingerprint": s.fingerprint,
                "active": s.active,
                "version": s.version,
                "payload": s.payload,
            }
            for qbo_id, s in states.items()
        ],
    )


# ---- Batchly's items -------------------------------------------------------------------------------------------------
async def remember_batchly_item(
    conn: AsyncConnection, org: UUID, item_id: UUID, *, name: str, sku: str | None, version: int, now: datetime
) -> None:
    """Keep the newest snapshot of a Batchly item (an older version changes nothing)."""
    statement = _insert(conn, batchly_items).values(
        organization_id=org, item_id=item_id, name=name, sku=sku, entity_version=version, updated_at=now
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[batchly_items.c.organization_id, batchly_items.c.item_id],
            set_={"name": name, "sku": sku, "entity_version": version, "updated_at": now},
            where=batchly_items.c.entity_version <= version,
        )
    )


async def set_batchly_item_link(conn: AsyncConnection, org: UUID, item_id: UUID, qbo_item_id: str) -> None:
    await conn.execute(
        update(batchly_items)
        .where(batchly_items.c.organization_id == org, batchly_items.c.item_id == item_id)
        .values(qbo_item_id=qbo_item_id)
    )


async def batchly_catalog(conn: AsyncConnection, org: UUID) -> list[BatchlyItem]:
    rows = await conn.execute(select(batchly_items).where(batchly_items.c.organization_id == org))
    return [BatchlyItem(r.item_id, r.name, r.sku) for r in rows]


# ---- watermarks ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Watermark:
    changed_since: datetime
    recorded_at: datetime
    last_full_at: datetime | None


async def get_watermark(conn: AsyncConnection, org: UUID, kind: str) -> Watermark | None:
    row = (
        await conn.execute(
            select(pull_watermarks).where(pull_watermarks.c.organization_id == org, pull_watermarks.c.kind == kind)
        )
    ).first()
    return None if row is None else Watermark(row.changed_since, row.recorded_at, row.last_full_at)


async def save_watermark(
    conn: AsyncConnection, org: UUID, kind: str, *, changed_since: datetime, full: bool, summary: str, now: datetime
) -> None:
    statement = _insert(conn, pull_watermarks).values(
        organization_id=org,
        kind=kind,
        changed_since=changed_since,
        recorded_at=now,
        last_full_at=now if full else None,
        last_summary=summary,
    )
    values: dict[str, Any] = {"changed_since": changed_since, "recorded_at": now, "last_summary": summary}
    if full:
        values["last_full_at"] = now
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[pull_watermarks.c.organization_id, pull_watermarks.c.kind], set_=values
        )
    )


# ---- the scheduler ---------------------------------------------------------------------------------------------------
async def schedulable_organizations(conn: AsyncConnection) -> list[tuple[UUID, str]]:
    """Organizations connected to QuickBooks and not deactivated in Batchly, with their time zones."""
    rows = await conn.execute(
        select(connection_status.c.organization_id, organizations.c.timezone, organizations.c.active)
        .select_from(
            connection_status.outerjoin(
                organizations, organizations.c.organization_id == connection_status.c.organization_id
            )
        )
        .where(connection_status.c.status == "connected")
        .order_by(connection_status.c.organization_id)
    )
    return [(r.organization_id, r.timezone or "") for r in rows if r.active is not False]


async def claimed_slots(conn: AsyncConnection, org: UUID, slots: Iterable[str]) -> set[str]:
    wanted = list(slots)
    if not wanted:
        return set()
    rows = await conn.execute(
        select(schedule_claims.c.slot).where(
            schedule_claims.c.organization_id == org, schedule_claims.c.slot.in_(wanted)
        )
    )
    return {r.slot for r in rows}


async def claim_slot(
    conn: AsyncConnection,
    org: UUID,
    *,
    slot: str,
    job: str,
    fire_at: datetime,
    event_id: UUID,
    holder: str,
    now: datetime,
) -> bool:
    """Insert the slot's row; False when it exists (another replica, or an earlier tick, claimed it).

    One statement (``INSERT ... ON CONFLICT DO NOTHING``): the primary key decides, atomically, on both databases.
    """
    statement = (
        _insert(conn, schedule_claims)
        .values(
            organization_id=org,
            slot=slot,
            job=job,
            fire_at=fire_at,
            claimed_at=now,
            claimed_by=holder,
            event_id=event_id,
            published_at=None,
        )
        .on_conflict_do_nothing(index_elements=[schedule_claims.c.organization_id, schedule_claims.c.slot])
    )
    return bool((await conn.execute(statement)).rowcount)


async def mark_slot_published(conn: AsyncConnection, org: UUID, slot: str, now: datetime) -> None:
    await conn.execute(
        update(schedule_claims)
        .where(schedule_claims.c.organization_id == org, schedule_claims.c.slot == slot)
        .values(published_at=now)
    )


@dataclass(frozen=True, slots=True)
class Claim:
    organization_id: UUID
    slot: str
    job: str
    fire_at: datetime
    event_id: UUID


async def unpublished_claims(conn: AsyncConnection, claimed_before: datetime) -> list[Claim]:
    """Slots claimed but never published (the claiming replica stopped in between)."""
    rows = await conn.execute(
        select(schedule_claims).where(
            schedule_claims.c.published_at.is_(None), schedule_claims.c.claimed_at <= claimed_before
        )
    )
    return [Claim(r.organization_id, r.slot, r.job, r.fire_at, r.event_id) for r in rows]


# ---- leases ----------------------------------------------------------------------------------------------------------
async def acquire_lease(
    conn: AsyncConnection, org: UUID, kind: str, *, holder: str, now: datetime, expires_at: datetime
) -> bool:
    """Take the (organization, kind) lease if it is free or expired — one atomic upsert."""
    statement = _insert(conn, pull_leases).values(organization_id=org, kind=kind, holder=holder, expires_at=expires_at)
    statement = statement.on_conflict_do_update(
        index_elements=[pull_leases.c.organization_id, pull_leases.c.kind],
        set_={"holder": holder, "expires_at": expires_at},
        where=pull_leases.c.expires_at <= now,
    )
    return bool((await conn.execute(statement)).rowcount)


async def release_lease(conn: AsyncConnection, org: UUID, kind: str, holder: str) -> None:
    await conn.execute(
        delete(pull_leases).where(
            pull_leases.c.organization_id == org, pull_leases.c.kind == kind, pull_leases.c.holder == holder
        )
    )


# ---- realms (webhooks) -----------------------------------------------------------------------------------------------
async def organizations_for_realms(conn: AsyncConnection, realms: Iterable[str]) -> dict[str, list[UUID]]:
    """Which organizations each QuickBooks company belongs to (from token-manager's ``QboConnected``)."""
    wanted = list(dict.fromkeys(realms))
    if not wanted:
        return {}
    rows = await conn.execute(
        select(connection_status.c.realm_id, connection_status.c.organization_id)
        .where(connection_status.c.realm_id.in_(wanted))
        .order_by(connection_status.c.organization_id)
    )
    found: dict[str, list[UUID]] = {}
    for row in rows:
        found.setdefault(row.realm_id, []).append(row.organization_id)
    return found
