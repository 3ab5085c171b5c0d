"""invoice-sync's own tables (branch ``invoice_sync``).

* ``customer_links`` — Batchly customer -> QuickBooks customer, learnt from customer-sync's ``SyncCompleted``.
* ``item_links`` / ``item_skus`` — Batchly item -> QuickBooks item (from pull-sync's ``ItemChanged``) and SKU ->
  QuickBooks item (``ItemChanged`` and our own look-ups by SKU).
* ``documents`` — every invoice, credit memo, payment and refund seen: the snapshot, its sync status, the QuickBooks
  id once it exists, and the write-ahead *intent* (which event last started a QuickBooks write for it, and when) that
  tells a later attempt the outcome of an earlier one may be unknown.
* ``pending_voids`` — a void that arrived before its invoice reached QuickBooks; applied right after the create.

No table has a unique constraint a handler's persist could trip over: the runtime reads an IntegrityError in the
outcome transaction as "processed concurrently" and would drop the outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import EllipsisType
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from qbsync.persistence.types import JsonDocument, UtcDateTime

__all__ = [
    "MIGRATIONS",
    "Document",
    "ItemLink",
    "PendingVoid",
    "claim_write",
    "customer_links",
    "documents",
    "documents_to_sync",
    "get_customer_link",
    "get_document",
    "get_item_links",
    "get_item_skus",
    "get_pending_void",
    "item_links",
    "item_skus",
    "mark_failed",
    "mark_synced",
    "mark_void_done",
    "metadata",
    "number_neighbours",
    "pending_voids",
    "release_write",
    "remember_document",
    "request_void",
    "save_qbo_id",
    "upsert_customer_link",
    "upsert_item_link",
    "upsert_item_sku",
]

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

customer_links = Table(
    "customer_links",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("customer_id", Uuid, primary_key=True),
    Column("qbo_id", String(64), nullable=False),
    Column("source_event_id", Uuid, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

item_links = Table(
    "item_links",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("item_id", Uuid, primary_key=True),
    Column("qbo_item_id", String(64), nullable=False),
    Column("sku", String(255), nullable=True),
    Column("active", Boolean, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

item_skus = Table(
    "item_skus",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("sku", String(255), primary_key=True),
    Column("qbo_item_id", String(64), nullable=False),
    Column("active", Boolean, nullable=False),
    # item_changed | sku_lookup
    Column("source", String(16), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

documents = Table(
    "documents",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    # invoice | credit_memo | payment | refund
    Column("kind", String(16), primary_key=True),
    Column("document_id", Uuid, primary_key=True),
    Column("number", String(64), nullable=True),
    Column("number_prefix", String(64), nullable=True),
    Column("number_seq", BigInteger, nullable=True),
    Column("customer_id", Uuid, nullable=True),
    Column("entity_version", BigInteger, nullable=False),
    Column("payload", JsonDocument, nullable=False),
    # pending | synced | failed
    Column("status", String(16), nullable=False),
    Column("qbo_entity", String(32), nullable=True),
    Column("qbo_id", String(64), nullable=True),
    Column("qbo_doc_number", String(64), nullable=True),
    Column("action", String(16), nullable=True),
    Column("warnings", JsonDocument, nullable=True),
    Column("needs_review", Boolean, nullable=False),
    Column("synced_event_id", Uuid, nullable=True),
    Column("intent_event_id", Uuid, nullable=True),
    Column("intent_at", UtcDateTime, nullable=True),
    #: Set while one attempt is writing the document (released when it ends; a crashed one expires after a lease).
    Column("writing_claim", Uuid, nullable=True),
    Column("writing_since", UtcDateTime, nullable=True),
    Column("extra", JsonDocument, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_documents_numbers", "organization_id", "kind", "number_prefix", "number_seq"),
    Index("ix_documents_status", "organization_id", "kind", "status"),
)

pending_voids = Table(
    "pending_voids",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("invoice_id", Uuid, primary_key=True),
    Column("event_id", Uuid, nullable=False),
    #: The InvoiceVoided envelope as JSON, to report its completion when another record applies it.
    Column("event", Text, nullable=False),
    Column("source_topic", String(255), nullable=False),
    Column("source_partition", Integer, nullable=False),
    Column("source_offset", BigInteger, nullable=False),
    # pending | done
    Column("status", String(16), nullable=False),
    Column("qbo_id", String(64), nullable=True),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)


def _insert(conn: AsyncConnection, table: Table) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


# ---- links ----------------------------------------------------------------------------------------------------------
async def upsert_customer_link(
    conn: AsyncConnection,
    *,
    organization_id: UUID,
    customer_id: UUID,
    qbo_id: str,
    event_id: UUID,
    occurred_at: datetime,
    now: datetime,
) -> None:
    """Remember the QuickBooks id of a customer; a later result (by ``occurred_at``) replaces an earlier one."""
    values = {"qbo_id": qbo_id, "source_event_id": event_id, "occurred_at": occurred_at, "updated_at": now}
    statement = _insert(conn, customer_links).values(organization_id=organization_id, customer_id=customer_id, **values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[customer_links.c.organization_id, customer_links.c.customer_id],
            set_=values,
            where=customer_links.c.occurred_at <= occurred_at,
        )
    )


async def get_customer_link(conn: AsyncConnection, organization_id: UUID, customer_id: UUID) -> str | None:
    row = (
        await conn.execute(
            select(customer_links.c.qbo_id).where(
                customer_links.c.organization_id == organization_id, customer_links.c.customer_id == customer_id
            )
        )
    ).first()
    return None if row is None else str(row.qbo_id)


@dataclass(frozen=True, slots=True)
class ItemLink:
    qbo_item_id: str
    active: bool


async def upsert_item_link(
    conn: AsyncConnection,
    *,
    organization_id: UUID,
    item_id: UUID,
    qbo_item_id: str,
    sku: str | None,
    active: bool,
    occurred_at: datetime,
    now: datetime,
) -> None:
    values = {"qbo_item_id": qbo_item_id, "sku": sku, "active": active, "occurred_at": occurred_at, "updated_at": now}
    statement = _insert(conn, item_links).values(organization_id=organization_id, item_id=item_id, **values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[item_links.c.organization_id, item_links.c.item_id],
            set_=values,
            where=item_links.c.occurred_at <= occurred_at,
        )
    )


async def upsert_item_sku(
    conn: AsyncConnection,
    *,
    organization_id: UUID,
    sku: str,
    qbo_item_id: str,
    active: bool,
    source: str,
    occurred_at: datetime,
    now: datetime,
) -> None:
    values = {
        "qbo_item_id": qbo_item_id,
        "active": active,
        "source": source,
        "occurred_at": occurred_at,
        "updated_at": now,
    }
    statement = _insert(conn, item_skus).values(organization_id=organization_id, sku=sku, **values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[item_skus.c.organization_id, item_skus.c.sku],
            set_=values,
            where=item_skus.c.occurred_at <= occurred_at,
        )
    )


async def get_item_links(
    conn: AsyncConnection, organization_id: UUID, item_ids: Sequence[UUID]
) -> dict[UUID, ItemLink]:
    if not item_ids:
        return {}
    rows = await conn.execute(
        select(item_links).where(
            item_links.c.organization_id == organization_id, item_links.c.item_id.in_(sorted(set(item_ids)))
        )
    )
    return {r.item_id: ItemLink(r.qbo_item_id, r.active) for r in rows}


async def get_item_skus(conn: AsyncConnection, organization_id: UUID, skus: Sequence[str]) -> dict[str, ItemLink]:
    if not skus:
        return {}
    rows = await conn.execute(
        select(item_skus).where(item_skus.c.organization_id == organization_id, item_skus.c.sku.in_(sorted(set(skus))))
    )
    return {r.sku: ItemLink(r.qbo_item_id, r.active) for r in rows}


# ---- documents ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Document:
    organization_id: UUID
    kind: str
    document_id: UUID
    number: str | None
    customer_id: UUID | None
    entity_version: int
    payload: dict[str, Any]
    status: str
    qbo_id: str | None
    qbo_doc_number: str | None
    action: str | None
    warnings: list[dict[str, str]]
    needs_review: bool
    synced_event_id: UUID | None
    intent_event_id: UUID | None
    intent_at: datetime | None
    extra: dict[str, Any]
    last_error: str | None

    @property
    def synced(self) -> bool:
        return self.status == "synced"


def _document(row: Any) -> Document:
    return Document(
        organization_id=row.organization_id,
        kind=row.kind,
        document_id=row.document_id,
        number=row.number,
        customer_id=row.customer_id,
        entity_version=row.entity_version,
        payload=_json(row.payload),
        status=row.status,
        qbo_id=row.qbo_id,
        qbo_doc_number=row.qbo_doc_number,
        action=row.action,
        warnings=list(_json(row.warnings) or []),
        needs_review=bool(row.needs_review),
        synced_event_id=row.synced_event_id,
        intent_event_id=row.intent_event_id,
        intent_at=row.intent_at,
        extra=dict(_json(row.extra) or {}),
        last_error=row.last_error,
    )


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def _key(organization_id: UUID, kind: str, document_id: UUID) -> Any:
    return (
        (documents.c.organization_id == organization_id)
        & (documents.c.kind == kind)
        & (documents.c.document_id == document_id)
    )


async def remember_document(
    conn: AsyncConnection,
    *,
    organization_id: UUID,
    kind: str,
    document_id: UUID,
    payload: dict[str, Any],
    entity_version: int,
    now: datetime,
    number: str | None = None,
    number_prefix: str | None = None,
    number_seq: int | None = None,
    customer_id: UUID | None = None,
) -> Document | None:
    """Record a document the first time it is seen; a newer snapshot replaces the payload until it is synced.

    Returns the row as written (``RETURNING``: one statement instead of an insert and a read), or ``None`` when an
    existing row was left as it was (an older or equal snapshot, or already synced) — read it with
    :func:`get_document`. Either way, on PostgreSQL the row is now locked by the caller's transaction (``ON CONFLICT
    DO UPDATE`` locks the conflicting row even when its ``WHERE`` leaves it unchanged), so what the transaction reads
    of it next is current until it commits."""
    values = {
        "number": number,
        "number_prefix": number_prefix,
        "number_seq": number_seq,
        "customer_id": customer_id,
        "entity_version": entity_version,
        "payload": payload,
        "updated_at": now,
    }
    statement = _insert(conn, documents).values(
        organization_id=organization_id,
        kind=kind,
        document_id=document_id,
        status="pending",
        needs_review=False,
        created_at=now,
        **values,
    )
    written = await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[documents.c.organization_id, documents.c.kind, documents.c.document_id],
            set_=values,
            where=(documents.c.entity_version < entity_version) & (documents.c.status != "synced"),
        ).returning(*documents.c)
    )
    row = written.first()
    return None if row is None else _document(row)


async def get_document(conn: AsyncConnection, organization_id: UUID, kind: str, document_id: UUID) -> Document | None:
    row = (await conn.execute(select(documents).where(_key(organization_id, kind, document_id)))).first()
    return None if row is None else _document(row)


async def claim_write(
    conn: AsyncConnection,
    organization_id: UUID,
    kind: str,
    document_id: UUID,
    *,
    claim: UUID,
    event_id: UUID,
    now: datetime,
    stale_before: datetime,
    intent_before: UUID | EllipsisType | None = ...,
) -> tuple[bool, UUID | None]:
    """Claim the document for one attempt's write and leave the write-ahead intent (committed by the caller).

    Returns (won, the intent found before): the claim is refused while another attempt holds a claim younger than
    ``stale_before``; the intent found tells this attempt whether an earlier write may have happened (pass
    ``intent_before`` when the caller read it in this transaction and no other can have changed it since). The update
    is conditional, so two concurrent attempts cannot both win (PostgreSQL re-checks the condition after the row
    lock; SQLite serialises the transactions).
    """
    if isinstance(intent_before, EllipsisType):
        row = (
            await conn.execute(select(documents.c.intent_event_id).where(_key(organization_id, kind, document_id)))
        ).first()
        intent_before = None if row is None else row.intent_event_id
    result = await conn.execute(
        update(documents)
        .where(
            _key(organization_id, kind, document_id)
            & (documents.c.writing_claim.is_(None) | (documents.c.writing_since < stale_before))
        )
        .values(writing_claim=claim, writing_since=now, intent_event_id=event_id, intent_at=now, updated_at=now)
    )
    return result.rowcount == 1, intent_before


async def release_write(
    conn: AsyncConnection,
    organization_id: UUID,
    kind: str,
    document_id: UUID,
    *,
    claim: UUID,
    restore_intent: tuple[UUID | None, datetime | None] | None = None,
) -> None:
    """End this attempt's claim. The intent stays (it records that a write may have happened) unless
    ``restore_intent`` gives the one to put back: the attempt ended before it could write."""
    values: dict[str, Any] = {"writing_claim": None, "writing_since": None}
    if restore_intent is not None:
        values["intent_event_id"], values["intent_at"] = restore_intent
    await conn.execute(
        update(documents)
        .where(_key(organization_id, kind, document_id) & (documents.c.writing_claim == claim))
        .values(**values)
    )


async def save_qbo_id(
    conn: AsyncConnection,
    organization_id: UUID,
    kind: str,
    document_id: UUID,
    *,
    qbo_entity: str,
    qbo_id: str,
    qbo_doc_number: str | None,
    action: str,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    """The document exists in QuickBooks (later steps, e.g. applying a credit, may still be due)."""
    values: dict[str, Any] = {
        "qbo_entity": qbo_entity,
        "qbo_id": qbo_id,
        "qbo_doc_number": qbo_doc_number,
        "action": action,
        "updated_at": now,
    }
    if extra is not None:
        values["extra"] = extra
    await conn.execute(update(documents).where(_key(organization_id, kind, document_id)).values(**values))


async def mark_synced(
    conn: AsyncConnection,
    organization_id: UUID,
    kind: str,
    document_id: UUID,
    *,
    qbo_entity: str,
    qbo_id: str,
    qbo_doc_number: str | None,
    action: str,
    warnings: list[dict[str, str]],
    needs_review: bool,
    event_id: UUID,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    values: dict[str, Any] = {
        "status": "synced",
        "qbo_entity": qbo_entity,
        "qbo_id": qbo_id,
        "qbo_doc_number": qbo_doc_number,
        "action": action,
        "warnings": warnings,
        "needs_review": needs_review,
        "synced_event_id": event_id,
        "last_error": None,
        "updated_at": now,
    }
    if extra is not None:
        values["extra"] = extra
    await conn.execute(update(documents).where(_key(organization_id, kind, document_id)).values(**values))


async def mark_failed(
    conn: AsyncConnection, organization_id: UUID, kind: str, document_id: UUID, *, error: str, now: datetime
) -> None:
    """A permanent failure: "Sync All Unsent Invoices" (or the next event) tries again; a synced one stays synced."""
    await conn.execute(
        update(documents)
        .where(_key(organization_id, kind, document_id) & (documents.c.status != "synced"))
        .values(status="failed", last_error=error[:2000], updated_at=now)
    )


async def documents_to_sync(
    conn: AsyncConnection, organization_id: UUID, kind: str, statuses: Sequence[str], *, limit: int
) -> list[Document]:
    """Unsynced documents of an organization, in number order (then first seen), at most ``limit``."""
    rows = await conn.execute(
        select(documents)
        .where(
            documents.c.organization_id == organization_id,
            documents.c.kind == kind,
            documents.c.status.in_(list(statuses)),
        )
        .order_by(documents.c.number_prefix, documents.c.number_seq, documents.c.created_at)
        .limit(limit)
    )
    return [_document(r) for r in rows]


async def number_neighbours(
    conn: AsyncConnection, organization_id: UUID, *, prefix: str, sequence: int
) -> tuple[int | None, bool]:
    """(the highest invoice number of ``prefix`` seen below ``sequence``, whether ``sequence - 1`` was seen)."""
    same = (
        (documents.c.organization_id == organization_id)
        & (documents.c.kind == "invoice")
        & (documents.c.number_prefix == prefix)
    )
    highest = (
        await conn.execute(select(func.max(documents.c.number_seq)).where(same & (documents.c.number_seq < sequence)))
    ).scalar()
    return (None if highest is None else int(highest)), highest == sequence - 1


# ---- pending voids --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PendingVoid:
    event_id: UUID
    event: str
    source_topic: str
    source_partition: int
    source_offset: int
    status: str


async def request_void(
    conn: AsyncConnection,
    *,
    organization_id: UUID,
    invoice_id: UUID,
    event_id: UUID,
    event: str,
    source: tuple[str, int, int],
    now: datetime,
) -> None:
    topic, partition, offset = source
    values = {
        "event_id": event_id,
        "event": event,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "status": "pending",
        "updated_at": now,
    }
    statement = _insert(conn, pending_voids).values(
        organization_id=organization_id, invoice_id=invoice_id, requested_at=now, **values
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[pending_voids.c.organization_id, pending_voids.c.invoice_id],
            set_=values,
            where=pending_voids.c.status != "done",
        )
    )


async def get_pending_void(conn: AsyncConnection, organization_id: UUID, invoice_id: UUID) -> PendingVoid | None:
    row = (
        await conn.execute(
            select(pending_voids).where(
                pending_voids.c.organization_id == organization_id, pending_voids.c.invoice_id == invoice_id
            )
        )
    ).first()
    if row is None:
        return None
    return PendingVoid(row.event_id, row.event, row.source_topic, row.source_partition, row.source_offset, row.status)


async def mark_void_done(
    conn: AsyncConnection, organization_id: UUID, invoice_id: UUID, *, qbo_id: str, now: datetime
) -> None:
    await conn.execute(
        update(pending_voids)
        .where(pending_voids.c.organization_id == organization_id, pending_voids.c.invoice_id == invoice_id)
        .values(status="done", qbo_id=qbo_id, updated_at=now)
    )
