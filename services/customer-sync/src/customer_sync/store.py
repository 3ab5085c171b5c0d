"""customer-sync's own tables: links to QuickBooks customers and the latest snapshot of every Batchly customer.

* ``customer_links`` — Batchly customer <-> QuickBooks customer (immutable QBO id, current SyncToken, the last
  applied ``entity_version``, what was last pushed). One QBO customer is linked to at most one Batchly customer.
* ``customer_snapshots`` — the newest snapshot seen per customer and its sync status; "Sync All Customers" and the
  nightly flush work from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from qbsync.contracts.batchly import CustomerPayload
from qbsync.domain.customers import CustomerLink
from qbsync.persistence.types import UtcDateTime

__all__ = [
    "MIGRATIONS",
    "Snapshot",
    "customer_links",
    "customer_snapshots",
    "get_link",
    "link_owner",
    "metadata",
    "save_link",
    "snapshots_to_sync",
    "store_snapshot",
]

MIGRATIONS = Path(__file__).parent / "migrations" / "versions"

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)
_JSON: Any = JSON().with_variant(postgresql.JSONB(), "postgresql")

customer_links = Table(
    "customer_links",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("customer_id", Uuid, primary_key=True),
    Column("qbo_id", String(64), nullable=False),
    Column("qbo_sync_token", String(32), nullable=False),
    Column("last_entity_version", BigInteger, nullable=False),
    Column("pushed_body", _JSON, nullable=True),
    Column("pushed_fingerprint", String(64), nullable=True),
    Column("linked", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("organization_id", "qbo_id", name="uq_customer_links_org_qbo"),
)

customer_snapshots = Table(
    "customer_snapshots",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    Column("customer_id", Uuid, primary_key=True),
    Column("entity_version", BigInteger, nullable=False),
    Column("payload", _JSON, nullable=False),
    # unsynced | synced | failed | deferred
    Column("status", String(16), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    customer: CustomerPayload
    entity_version: int
    status: str


async def get_link(
    conn: AsyncConnection, organization_id: UUID, customer_id: UUID
) -> tuple[CustomerLink, dict[str, Any] | None] | None:
    row = (
        await conn.execute(
            select(customer_links).where(
                customer_links.c.organization_id == organization_id, customer_links.c.customer_id == customer_id
            )
        )
    ).first()
    if row is None:
        return None
    link = CustomerLink(row.qbo_id, row.qbo_sync_token, row.last_entity_version, row.pushed_fingerprint, row.linked)
    return link, row.pushed_body


async def link_owner(conn: AsyncConnection, organization_id: UUID, qbo_id: str) -> UUID | None:
    """The Batchly customer a QuickBooks customer is linked to, if any."""
    row = (
        await conn.execute(
            select(customer_links.c.customer_id).where(
                customer_links.c.organization_id == organization_id, customer_links.c.qbo_id == qbo_id
            )
        )
    ).first()
    return None if row is None else row.customer_id


async def save_link(
    conn: AsyncConnection,
    *,
    organization_id: UUID,
    customer_id: UUID,
    qbo_id: str,
    sync_token: str,
    entity_version: int,
    pushed_body: dict[str, Any] | None,
    pushed_fingerprint: str | None,
    linked: bool,
    now: datetime,
) -> None:
    """Create or advance a link; the applied version never moves backwards."""
    values = {
        "qbo_id": qbo_id,
        "qbo_sync_token": sync_token,
        "last_entity_version": entity_version,
        "pushed_body": pushed_body,
        "pushed_fingerprint": pushed_fingerprint,
        "updated_at": now,
    }
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(customer_links)
    statement = insert.values(
        organization_id=organization_id, customer_id=customer_id, linked=linked, created_at=now, **values
    ).on_conflict_do_update(
        index_elements=[customer_links.c.organization_id, customer_links.c.customer_id],
        set_=values,
        where=customer_links.c.last_entity_version <= entity_version,
    )
    await conn.execute(statement)


async def store_snapshot(
    conn: AsyncConnection,
    organization_id: UUID,
    customer: CustomerPayload,
    *,
    version: int,
    status: str,
    now: datetime,
    error: str | None = None,
) -> None:
    """Keep the newest snapshot: a strictly newer version replaces the stored one (and its status); the same or an
    older version changes nothing — a redelivered snapshot must not reset a synced customer to unsynced."""
    payload = customer.model_dump(mode="json")
    insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(customer_snapshots)
    values = {"entity_version": version, "payload": payload, "status": status, "last_error": error, "updated_at": now}
    statement = insert.values(organization_id=organization_id, customer_id=customer.customer_id, **values)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[customer_snapshots.c.organization_id, customer_snapshots.c.customer_id],
            set_=values,
            where=customer_snapshots.c.entity_version < version,
        )
    )


async def snapshot_version(conn: AsyncConnection, organization_id: UUID, customer_id: UUID) -> int | None:
    """The version of the newest snapshot stored for the customer (None: never seen)."""
    row = (
        await conn.execute(
            select(customer_snapshots.c.entity_version).where(
                customer_snapshots.c.organization_id == organization_id,
                customer_snapshots.c.customer_id == customer_id,
            )
        )
    ).first()
    return None if row is None else int(row.entity_version)


async def mark_snapshot(
    conn: AsyncConnection,
    organization_id: UUID,
    customer_id: UUID,
    *,
    version: int,
    status: str,
    now: datetime,
    error: str | None = None,
) -> None:
    """Set the status of the stored snapshot if it is still the one at ``version`` (a newer one keeps its own)."""
    await conn.execute(
        update(customer_snapshots)
        .where(
            customer_snapshots.c.organization_id == organization_id,
            customer_snapshots.c.customer_id == customer_id,
            customer_snapshots.c.entity_version == version,
        )
        .values(status=status, last_error=error, updated_at=now)
    )


async def snapshots_to_sync(
    conn: AsyncConnection, organization_id: UUID, statuses: Sequence[str] | None
) -> list[Snapshot]:
    """Snapshots of an organization with one of ``statuses`` (all when None), oldest change first."""
    query = select(customer_snapshots).where(customer_snapshots.c.organization_id == organization_id)
    if statuses is not None:
        query = query.where(customer_snapshots.c.status.in_(list(statuses)))
    rows = await conn.execute(query.order_by(customer_snapshots.c.updated_at))
    return [Snapshot(CustomerPayload.model_validate_json(_json(r.payload)), r.entity_version, r.status) for r in rows]


def _json(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)
