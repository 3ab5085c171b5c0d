"""Reads and writes of the runtime tables (ledger, attempts, idempotency, parking, connection status).

Every function takes the caller's connection, so the runtime composes them into one transaction with the handler's
own state changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from qbsync.persistence.tables import (
    connection_status,
    parked_records,
    processed_events,
    sync_attempts,
    sync_ledger,
)
from qbsync.runtime.kafka import OutboundRecord

__all__ = [
    "FINAL_STATUSES",
    "LedgerEntry",
    "ParkedRecord",
    "Seen",
    "connection_state",
    "delete_parked",
    "event_status",
    "find_processed",
    "insert_attempt",
    "ledger_id",
    "list_parked",
    "park",
    "record_processed",
    "seen",
    "set_connection_state",
    "upsert_ledger",
]

_NAMESPACE = uuid.UUID("6a3f8f4e-35a4-4b38-9d55-0c6e1c1f5a11")

#: Ledger statuses an event ends in when it was handled; later steps of a racing copy do not overwrite them.
FINAL_STATUSES = ("completed", "ignored", "deferred")


def ledger_id(service: str, event_id: UUID) -> UUID:
    """Deterministic ledger row id, so every step can upsert without reading first."""
    return uuid.uuid5(_NAMESPACE, f"{service}:{event_id}")


def _insert(conn: AsyncConnection, table: Any) -> Any:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported dialect {dialect}")


# ---- idempotency ---------------------------------------------------------------------------------------------------
async def find_processed(conn: AsyncConnection, group: str, event_id: UUID) -> list[OutboundRecord] | None:
    """The results recorded for an already processed event, or None if it was never processed."""
    row = (
        await conn.execute(
            select(processed_events.c.results).where(
                processed_events.c.consumer_group == group, processed_events.c.event_id == event_id
            )
        )
    ).first()
    if row is None:
        return None
    return [OutboundRecord.from_json(item) for item in row.results]


@dataclass(frozen=True, slots=True)
class Seen:
    """What the tables know before an event is handled (read in one statement: see :func:`seen`)."""

    #: The results recorded when the event was processed, or None if it never was.
    results: list[OutboundRecord] | None
    #: The event's ledger status in this service (None: never seen).
    status: str | None
    #: The organization's connection state ("connected", "lost", None: never heard of).
    connection: str | None


async def seen(conn: AsyncConnection, *, group: str, service: str, event_id: UUID, organization_id: UUID) -> Seen:
    """:func:`find_processed`, :func:`event_status` and :func:`connection_state` in one statement.

    Every record asks all three before its handler runs; one round trip instead of three matters on SQLite, where
    each statement is a hop to the driver's thread and back.
    """
    results = (
        select(processed_events.c.results)
        .where(processed_events.c.consumer_group == group, processed_events.c.event_id == event_id)
        .scalar_subquery()
    )
    status = select(sync_ledger.c.status).where(sync_ledger.c.id == ledger_id(service, event_id)).scalar_subquery()
    connection = (
        select(connection_status.c.status)
        .where(connection_status.c.organization_id == organization_id)
        .scalar_subquery()
    )
    row = (
        await conn.execute(select(results.label("results"), status.label("status"), connection.label("connection")))
    ).one()
    return Seen(
        results=None if row.results is None else [OutboundRecord.from_json(item) for item in row.results],
        status=None if row.status is None else str(row.status),
        connection=None if row.connection is None else str(row.connection),
    )


async def event_status(conn: AsyncConnection, service: str, event_id: UUID) -> str | None:
    """The ledger status of ``event_id`` in ``service`` (``None``: never seen)."""
    row = (
        await conn.execute(select(sync_ledger.c.status).where(sync_ledger.c.id == ledger_id(service, event_id)))
    ).first()
    return None if row is None else str(row.status)


async def record_processed(
    conn: AsyncConnection,
    *,
    group: str,
    event_id: UUID,
    event_type: str,
    organization_id: UUID | None,
    outcome: str,
    results: Sequence[OutboundRecord],
    now: datetime,
) -> None:
    """Insert the idempotency row; raises IntegrityError if the event was processed concurrently."""
    await conn.execute(
        processed_events.insert().values(
            consumer_group=group,
            event_id=event_id,
            event_type=event_type,
            organization_id=organization_id,
            outcome=outcome,
            results=[r.to_json() for r in results],
            processed_at=now,
        )
    )


# ---- ledger --------------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class LedgerEntry:
    service: str
    event_id: UUID
    event_type: str
    organization_id: UUID | None
    entity_type: str
    entity_id: UUID | None
    entity_version: int | None
    direction: str
    status: str
    attempts: int
    max_attempts: int
    source_topic: str
    source_partition: int
    source_offset: int
    now: datetime
    occurred_at: datetime | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    error_class: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    hint: str | None = None
    action: str | None = None
    qbo_id: str | None = None
    qbo_doc_number: str | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)
    needs_review: bool = False
    manual_retry_available: bool = False
    dead_letter_topic: str | None = None
    completed: bool = False

    @property
    def id(self) -> UUID:
        return ledger_id(self.service, self.event_id)


async def upsert_ledger(conn: AsyncConnection, entry: LedgerEntry) -> UUID:
    """Create or advance the ledger row of an event. Returns its id."""
    values: dict[str, Any] = {
        "status": entry.status,
        "attempts": entry.attempts,
        "max_attempts": entry.max_attempts,
        "last_attempt_at": entry.last_attempt_at,
        "next_attempt_at": entry.next_attempt_at,
        "error_class": entry.error_class,
        "error_code": entry.error_code,
        "error_message": entry.error_message,
        "hint": entry.hint,
        "action": entry.action,
        "qbo_id": entry.qbo_id,
        "qbo_doc_number": entry.qbo_doc_number,
        "warnings": entry.warnings or None,
        "needs_review": entry.needs_review,
        "manual_retry_available": entry.manual_retry_available,
        "dead_letter_topic": entry.dead_letter_topic,
        "updated_at": entry.now,
        "completed_at": entry.now if entry.completed else None,
    }
    statement = _insert(conn, sync_ledger).values(
        id=entry.id,
        service=entry.service,
        event_id=entry.event_id,
        event_type=entry.event_type,
        organization_id=entry.organization_id,
        entity_type=entry.entity_type,
        entity_id=entry.entity_id,
        entity_version=entry.entity_version,
        direction=entry.direction,
        source_topic=entry.source_topic,
        source_partition=entry.source_partition,
        source_offset=entry.source_offset,
        occurred_at=entry.occurred_at,
        created_at=entry.now,
        **values,
    )
    # A row that reached a final state (another copy of the event completed it) is never downgraded by a copy that
    # was still in flight — two copies can race (main topic and a retry tier, a redelivery, a replay).
    if entry.status not in FINAL_STATUSES:
        statement = statement.on_conflict_do_update(
            index_elements=[sync_ledger.c.event_id],
            set_=values,
            where=sync_ledger.c.status.not_in(FINAL_STATUSES),
        )
    else:
        statement = statement.on_conflict_do_update(index_elements=[sync_ledger.c.event_id], set_=values)
    await conn.execute(statement)
    return entry.id


async def insert_attempt(
    conn: AsyncConnection,
    *,
    ledger: UUID,
    attempt: int,
    outcome: str,
    started_at: datetime,
    finished_at: datetime,
    topic: str,
    partition: int,
    offset: int,
    error_class: str | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> None:
    await conn.execute(
        sync_attempts.insert().values(
            ledger_id=ledger,
            attempt=attempt,
            outcome=outcome,
            started_at=started_at,
            finished_at=finished_at,
            topic=topic,
            partition=partition,
            offset=offset,
            error_class=error_class,
            error_code=error_code,
            error_message=error_message,
        )
    )


# ---- parking -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ParkedRecord:
    id: UUID
    event_id: UUID
    organization_id: UUID
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    attempt: int


async def park(
    conn: AsyncConnection,
    *,
    group: str,
    organization_id: UUID,
    event_id: UUID,
    event_type: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes,
    headers: dict[str, str],
    attempt: int,
    reason: str,
    now: datetime,
) -> None:
    """Hold a record until its organization reconnects (a redelivered record is parked once)."""
    statement = _insert(conn, parked_records).values(
        id=uuid.uuid4(),
        consumer_group=group,
        organization_id=organization_id,
        event_id=event_id,
        event_type=event_type,
        topic=topic,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        headers=[[k, v] for k, v in headers.items()],
        attempt=attempt,
        reason=reason,
        parked_at=now,
    )
    await conn.execute(statement.on_conflict_do_nothing())


async def list_parked(
    conn: AsyncConnection,
    group: str,
    organization_id: UUID,
    *,
    limit: int = 500,
    parked_before: datetime | None = None,
) -> list[ParkedRecord]:
    """Parked records of an organization, oldest first; ``parked_before`` keeps those whose attempt started earlier."""
    query = select(parked_records).where(
        parked_records.c.consumer_group == group, parked_records.c.organization_id == organization_id
    )
    if parked_before is not None:
        query = query.where(parked_records.c.parked_at <= parked_before)
    rows = await conn.execute(query.order_by(parked_records.c.parked_at, parked_records.c.offset).limit(limit))
    return [
        ParkedRecord(
            id=r.id,
            event_id=r.event_id,
            organization_id=r.organization_id,
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            key=r.key,
            value=r.value,
            headers=dict(r.headers),
            attempt=r.attempt,
        )
        for r in rows
    ]


async def delete_parked(conn: AsyncConnection, ids: Sequence[UUID]) -> None:
    if ids:
        await conn.execute(delete(parked_records).where(parked_records.c.id.in_(list(ids))))


async def count_parked(conn: AsyncConnection, group: str) -> int:
    return int(
        (
            await conn.execute(
                select(func.count()).select_from(parked_records).where(parked_records.c.consumer_group == group)
            )
        ).scalar_one()
    )


# ---- connection status ---------------------------------------------------------------------------------------------
async def set_connection_state(
    conn: AsyncConnection,
    *,
    organization_id: UUID,
    status: str,
    realm_id: str | None,
    reason: str | None,
    changed_at: datetime,
    event_id: UUID,
) -> bool:
    """Record a connection change unless a newer one is already recorded. Returns whether it was applied."""
    current = (
        await conn.execute(
            select(connection_status.c.changed_at).where(connection_status.c.organization_id == organization_id)
        )
    ).first()
    values = {"status": status, "realm_id": realm_id, "reason": reason, "changed_at": changed_at, "event_id": event_id}
    if current is None:
        await conn.execute(connection_status.insert().values(organization_id=organization_id, **values))
        return True
    if current.changed_at > changed_at:
        return False
    await conn.execute(
        update(connection_status).where(connection_status.c.organization_id == organization_id).values(**values)
    )
    return True


async def connection_state(conn: AsyncConnection, organization_id: UUID) -> str | None:
    """ "connected", "lost", or None when this service never heard about the organization."""
    row = (
        await conn.execute(
            select(connection_status.c.status).where(connection_status.c.organization_id == organization_id)
        )
    ).first()
    return None if row is None else str(row.status)
