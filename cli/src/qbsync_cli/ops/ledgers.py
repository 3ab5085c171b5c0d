"""Read-only access to every service's sync ledger, for ``status``, ``history``, ``failed`` and ``retry``.

Each service owns its database; the CLI opens each one exactly as the service does
(``Database.open(service, settings.database)``) and only ever reads. A service whose database does not exist yet (an
embedded stack that never ran it) or has no ledger table is reported as absent, never created.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from uuid import UUID

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from qbsync.persistence import Database, database_url_for
from qbsync.persistence.tables import connection_status, organizations, sync_ledger
from qbsync.settings import SERVICE_NAMES, DatabaseSettings

__all__ = ["LedgerRow", "Ledgers", "OrgCounts"]

#: Ledger statuses that mean "waiting for an attempt" (the seed's pending queue).
PENDING_STATUSES = ("pending", "retrying", "parked")


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One ledger row (one inbound event's attempt chain) and the service that owns it."""

    service: str
    id: UUID
    event_id: UUID
    event_type: str
    organization_id: UUID | None
    entity_type: str
    entity_id: UUID | None
    status: str
    attempts: int
    max_attempts: int
    error_class: str | None
    error_code: str | None
    error_message: str | None
    hint: str | None
    action: str | None
    qbo_id: str | None
    qbo_doc_number: str | None
    warnings: list[dict[str, str]]
    source_topic: str
    source_partition: int
    source_offset: int
    dead_letter_topic: str | None
    next_attempt_at: datetime | None
    occurred_at: datetime | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None

    @classmethod
    def from_row(cls, service: str, row: Any) -> LedgerRow:
        return cls(
            service=service,
            id=row.id,
            event_id=row.event_id,
            event_type=row.event_type,
            organization_id=row.organization_id,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            status=row.status,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            error_class=row.error_class,
            error_code=row.error_code,
            error_message=row.error_message,
            hint=row.hint,
            action=row.action,
            qbo_id=row.qbo_id,
            qbo_doc_number=row.qbo_doc_number,
            warnings=list(row.warnings or []),
            source_topic=row.source_topic,
            source_partition=row.source_partition,
            source_offset=row.source_offset,
            dead_letter_topic=row.dead_letter_topic,
            next_attempt_at=row.next_attempt_at,
            occurred_at=row.occurred_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
            completed_at=row.completed_at,
        )

    @property
    def malformed(self) -> bool:
        return self.error_class == "malformed" or self.entity_type == "unknown"


@dataclass
class OrgCounts:
    """What the Sync Dashboard shows for one organization, summed over every service."""

    organization_id: UUID
    #: entity type -> {status: count} for rows updated in the recent window
    recent: dict[str, dict[str, int]]
    #: entity type -> count of rows waiting (pending, retrying, parked)
    pending: dict[str, int]
    #: entity type -> rows failed within the failure window
    failed: dict[str, int]
    last_completed: datetime | None
    #: the newest "pull_summary" warning lines of pull runs, by pull kind ("items", "payments", ...)
    pulls: dict[str, tuple[datetime, str]]


class Ledgers:
    """The ledgers of the services that have one. Use ``async with Ledgers.open(settings) as ledgers``."""

    def __init__(self, databases: dict[str, Database], absent: Sequence[str]) -> None:
        self.databases = databases
        self.absent = tuple(absent)

    @classmethod
    async def open(cls, settings: DatabaseSettings, services: Iterable[str] = SERVICE_NAMES) -> Ledgers:
        databases: dict[str, Database] = {}
        absent: list[str] = []
        for service in services:
            url = database_url_for(service, settings)
            if url.get_backend_name() == "sqlite" and not (url.database and _exists(url.database)):
                absent.append(service)
                continue
            db = await Database.open(service, settings)
            if await _has_ledger(db):
                databases[service] = db
            else:
                await db.close()
                absent.append(service)
        return cls(databases, absent)

    async def close(self) -> None:
        for db in self.databases.values():
            await db.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # ---- queries -------------------------------------------------------------------------------------------------
    async def history(
        self,
        *,
        organization_id: UUID | None = None,
        service: str | None = None,
        entity_type: str | None = None,
        limit: int = 100,
    ) -> list[LedgerRow]:
        """The newest ``limit`` rows across services, newest first."""
        query = _filtered(select(sync_ledger), organization_id, entity_type)
        query = query.order_by(sync_ledger.c.updated_at.desc()).limit(limit)
        rows = await self._rows(query, service)
        return sorted(rows, key=lambda r: r.updated_at, reverse=True)[:limit]

    async def failed(
        self,
        *,
        since: datetime,
        organization_id: UUID | None = None,
        service: str | None = None,
        entity_type: str | None = None,
        limit: int = 1000,
    ) -> list[LedgerRow]:
        """Rows whose outcome is "failed" (dead-lettered, retry available) updated since ``since``, newest first."""
        query = _filtered(select(sync_ledger), organization_id, entity_type).where(
            sync_ledger.c.status == "failed", sync_ledger.c.updated_at >= since
        )
        rows = await self._rows(query.order_by(sync_ledger.c.updated_at.desc()).limit(limit), service)
        return sorted(rows, key=lambda r: r.updated_at, reverse=True)[:limit]

    async def find(self, identifier: UUID) -> list[LedgerRow]:
        """Rows whose ledger id or event id is ``identifier`` (an event handled by several services has several)."""
        query = select(sync_ledger).where(or_(sync_ledger.c.id == identifier, sync_ledger.c.event_id == identifier))
        return await self._rows(query, None)

    async def states(self, service: str, event_ids: Iterable[UUID]) -> dict[UUID, tuple[str, datetime]]:
        """Ledger status and last update of each event in ``service``'s ledger (absent events are left out)."""
        db = self.databases.get(service)
        ids = list(event_ids)
        found: dict[UUID, tuple[str, datetime]] = {}
        if db is None:
            return found
        c = sync_ledger.c
        async with db.connect() as conn:
            for start in range(0, len(ids), 500):
                rows = await conn.execute(
                    select(c.event_id, c.status, c.updated_at).where(c.event_id.in_(ids[start : start + 500]))
                )
                found.update({row.event_id: (row.status, row.updated_at) for row in rows})
        return found

    async def organizations(self) -> list[UUID]:
        """Every organization any ledger has a row for."""
        found: set[UUID] = set()
        for db in self.databases.values():
            async with db.connect() as conn:
                rows = await conn.execute(
                    select(sync_ledger.c.organization_id).where(sync_ledger.c.organization_id.is_not(None)).distinct()
                )
                found.update(row[0] for row in rows)
        return sorted(found, key=str)

    async def organization_names(self) -> dict[UUID, str]:
        names: dict[UUID, str] = {}
        for db in self.databases.values():
            async with db.connect() as conn:
                for row in await conn.execute(select(organizations.c.organization_id, organizations.c.name)):
                    names[row[0]] = row[1]
        return names

    async def connection_states(self) -> dict[UUID, tuple[str, datetime]]:
        """Each organization's newest connection state as the sync services learnt it from token-manager."""
        states: dict[UUID, tuple[str, datetime]] = {}
        for db in self.databases.values():
            async with db.connect() as conn:
                rows = await conn.execute(
                    select(
                        connection_status.c.organization_id, connection_status.c.status, connection_status.c.changed_at
                    )
                )
                for org, status, changed_at in rows:
                    if org not in states or states[org][1] < changed_at:
                        states[org] = (status, changed_at)
        return states

    async def counts(self, organization_id: UUID, *, recent_since: datetime, failed_since: datetime) -> OrgCounts:
        counts = OrgCounts(organization_id, {}, {}, {}, None, {})
        for db in self.databases.values():
            async with db.connect() as conn:
                await _add_counts(conn, counts, recent_since=recent_since, failed_since=failed_since)
                await _add_pulls(conn, counts)
        return counts

    async def _rows(self, query: Select[Any], service: str | None) -> list[LedgerRow]:
        rows: list[LedgerRow] = []
        for name, db in self.databases.items():
            if service is not None and name != service:
                continue
            async with db.connect() as conn:
                rows.extend(LedgerRow.from_row(name, row) for row in await conn.execute(query))
        return rows


def _filtered(query: Select[Any], organization_id: UUID | None, entity_type: str | None) -> Select[Any]:
    if organization_id is not None:
        query = query.where(sync_ledger.c.organization_id == organization_id)
    if entity_type is not None:
        query = query.where(sync_ledger.c.entity_type == entity_type)
    return query


async def _add_counts(
    conn: AsyncConnection, counts: OrgCounts, *, recent_since: datetime, failed_since: datetime
) -> None:
    c = sync_ledger.c
    org = c.organization_id == counts.organization_id
    recent = await conn.execute(
        select(c.entity_type, c.status, func.count())
        .where(org, c.updated_at >= recent_since)
        .group_by(c.entity_type, c.status)
    )
    for entity_type, status, n in recent:
        bucket = counts.recent.setdefault(entity_type, {})
        bucket[status] = bucket.get(status, 0) + int(n)
    pending = await conn.execute(
        select(c.entity_type, func.count()).where(org, c.status.in_(PENDING_STATUSES)).group_by(c.entity_type)
    )
    for entity_type, n in pending:
        counts.pending[entity_type] = counts.pending.get(entity_type, 0) + int(n)
    failed = await conn.execute(
        select(c.entity_type, func.count())
        .where(org, c.status == "failed", c.updated_at >= failed_since)
        .group_by(c.entity_type)
    )
    for entity_type, n in failed:
        counts.failed[entity_type] = counts.failed.get(entity_type, 0) + int(n)
    last = (await conn.execute(select(func.max(c.updated_at)).where(org, c.status == "completed"))).scalar()
    if last is not None and (counts.last_completed is None or last > counts.last_completed):
        counts.last_completed = last


async def _add_pulls(conn: AsyncConnection, counts: OrgCounts, *, scan: int = 50) -> None:
    """The newest pull summaries (pull-sync writes one ``pull_summary`` warning per pulled kind on its runs)."""
    c = sync_ledger.c
    rows = await conn.execute(
        select(c.updated_at, c.warnings)
        .where(c.organization_id == counts.organization_id, c.status == "completed", c.warnings.is_not(None))
        .order_by(c.updated_at.desc())
        .limit(scan)
    )
    for updated_at, warnings in rows:
        for warning in warnings or []:
            if warning.get("code") != "pull_summary":
                continue
            kind = str(warning.get("message", "")).split(":", 1)[0].strip() or "pull"
            if kind not in counts.pulls or counts.pulls[kind][0] < updated_at:
                counts.pulls[kind] = (updated_at, str(warning.get("message", "")))


async def _has_ledger(db: Database) -> bool:
    try:
        async with db.connect() as conn:
            await conn.execute(select(sync_ledger.c.id).limit(1))
    except DBAPIError:
        return False
    return True


def _exists(path: str) -> bool:
    return Path(path).exists()
