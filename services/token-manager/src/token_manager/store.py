"""token-manager's tables and the statements on them (every function takes the caller's connection).

* ``qbo_connections`` — one row per organization: status, realm, the access and refresh tokens as Fernet
  ciphertext, their expiries in clear (access, rolling refresh, Intuit's hard cap), the current access token's
  fingerprint, last refresh / error, and the per-organization counter that versions connection events.
  ``active_realm_id`` holds the realm while the connection is not ``disconnected``; its unique constraint is the
  database's guarantee of "one company per organization and one organization per company" even when two callbacks
  race on two replicas.
* ``oauth_states`` — one row per issued OAuth ``state`` nonce, deleted when a callback consumes it (single use).
* ``connection_event_outbox`` — connection events written in the same transaction as the change they announce and
  published afterwards (at least once, in order), so a crash or a broker outage can delay an event but not lose it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from qbsync.persistence.types import JsonDocument, UtcDateTime

__all__ = [
    "ConnectionRecord",
    "ConnectionStatus",
    "GaugeInputs",
    "LockMode",
    "all_connections",
    "connection_event_outbox",
    "consume_state",
    "delete_outbox",
    "due_for_refresh",
    "enqueue_outbox",
    "find_by_active_realm",
    "gauge_inputs",
    "get_connection",
    "insert_connection",
    "insert_state",
    "metadata",
    "oauth_states",
    "pending_outbox",
    "purge_states",
    "qbo_connections",
    "replace_ciphertexts",
    "update_connection",
]

ConnectionStatus = Literal["connected", "needs_reconnect", "disconnected"]
#: ``none``: plain read; ``wait``: ``SELECT … FOR UPDATE``; ``skip``: ``… FOR UPDATE SKIP LOCKED`` (PostgreSQL only).
LockMode = Literal["none", "wait", "skip"]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

qbo_connections = Table(
    "qbo_connections",
    metadata,
    Column("organization_id", Uuid, primary_key=True),
    # connected | needs_reconnect | disconnected
    Column("status", String(16), nullable=False),
    Column("realm_id", String(64), nullable=False),
    Column("active_realm_id", String(64), nullable=True, unique=True),
    Column("environment", String(16), nullable=False),
    Column("company_name", String(255), nullable=True),
    Column("access_token_ciphertext", Text, nullable=True),
    Column("refresh_token_ciphertext", Text, nullable=True),
    Column("access_token_fingerprint", String(32), nullable=True),
    Column("access_expires_at", UtcDateTime, nullable=True),
    Column("refresh_expires_at", UtcDateTime, nullable=True),
    Column("refresh_hard_expires_at", UtcDateTime, nullable=True),
    Column("refresh_token_changed_at", UtcDateTime, nullable=True),
    Column("connected_at", UtcDateTime, nullable=False),
    Column("status_changed_at", UtcDateTime, nullable=False),
    Column("last_refresh_at", UtcDateTime, nullable=True),
    Column("last_forced_refresh_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("last_error_at", UtcDateTime, nullable=True),
    Column("consecutive_failures", Integer, nullable=False),
    Column("event_version", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_qbo_connections_status_access_expires_at", "status", "access_expires_at"),
)

oauth_states = Table(
    "oauth_states",
    metadata,
    Column("nonce", String(32), primary_key=True),
    Column("organization_id", Uuid, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
)

connection_event_outbox = Table(
    "connection_event_outbox",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("organization_id", Uuid, nullable=False),
    Column("event_type", String(64), nullable=False),
    #: ``OutboundRecord.to_json()``: topic, key, value, headers.
    Column("record", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """A ``qbo_connections`` row. Tokens stay ciphertext here; only the refresher and the API decrypt them."""

    organization_id: UUID
    status: ConnectionStatus
    realm_id: str
    active_realm_id: str | None
    environment: str
    company_name: str | None
    access_token_ciphertext: str | None
    refresh_token_ciphertext: str | None
    access_token_fingerprint: str | None
    access_expires_at: datetime | None
    refresh_expires_at: datetime | None
    refresh_hard_expires_at: datetime | None
    refresh_token_changed_at: datetime | None
    connected_at: datetime
    status_changed_at: datetime
    last_refresh_at: datetime | None
    last_forced_refresh_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    event_version: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> ConnectionRecord:
        data = row._mapping
        return cls(**{f.name: data[f.name] for f in fields(cls)})

    @property
    def refresh_token_ends_at(self) -> datetime | None:
        """When the refresh token stops working at the latest: the rolling expiry or the hard cap, the sooner."""
        ends = [t for t in (self.refresh_expires_at, self.refresh_hard_expires_at) if t is not None]
        return min(ends) if ends else None


# ---- connections --------------------------------------------------------------------------------------------------
async def get_connection(
    conn: AsyncConnection, organization_id: UUID, *, lock: LockMode = "none"
) -> ConnectionRecord | None:
    query = select(qbo_connections).where(qbo_connections.c.organization_id == organization_id)
    if lock != "none" and conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=lock == "skip")
    row = (await conn.execute(query)).first()
    return None if row is None else ConnectionRecord.from_row(row)


async def find_by_active_realm(conn: AsyncConnection, realm_id: str) -> ConnectionRecord | None:
    row = (await conn.execute(select(qbo_connections).where(qbo_connections.c.active_realm_id == realm_id))).first()
    return None if row is None else ConnectionRecord.from_row(row)


async def insert_connection(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    await conn.execute(qbo_connections.insert().values(**values))


async def update_connection(conn: AsyncConnection, organization_id: UUID, values: Mapping[str, Any]) -> None:
    await conn.execute(
        update(qbo_connections).where(qbo_connections.c.organization_id == organization_id).values(**values)
    )


async def all_connections(conn: AsyncConnection) -> list[ConnectionRecord]:
    rows = await conn.execute(select(qbo_connections).order_by(qbo_connections.c.connected_at))
    return [ConnectionRecord.from_row(row) for row in rows]


async def due_for_refresh(conn: AsyncConnection, before: datetime, *, limit: int = 500) -> list[UUID]:
    """Connected organizations whose access token expires before ``before`` (soonest first)."""
    rows = await conn.execute(
        select(qbo_connections.c.organization_id)
        .where(qbo_connections.c.status == "connected")
        .where(qbo_connections.c.access_expires_at < before)
        .order_by(qbo_connections.c.access_expires_at)
        .limit(limit)
    )
    return [row.organization_id for row in rows]


@dataclass(frozen=True, slots=True)
class GaugeInputs:
    by_status: dict[str, int]
    #: When the first refresh token of a connected organization stops working (None: no connection).
    soonest_refresh_end: datetime | None
    ends: list[datetime]


async def gauge_inputs(conn: AsyncConnection) -> GaugeInputs:
    counts = await conn.execute(select(qbo_connections.c.status, func.count()).group_by(qbo_connections.c.status))
    by_status = {str(status): int(count) for status, count in counts}
    rows = await conn.execute(
        select(qbo_connections.c.refresh_expires_at, qbo_connections.c.refresh_hard_expires_at).where(
            qbo_connections.c.status == "connected"
        )
    )
    ends: list[datetime] = []
    for rolling, hard in rows:
        candidates = [t for t in (rolling, hard) if t is not None]
        if candidates:
            ends.append(min(candidates))
    return GaugeInputs(by_status, min(ends) if ends else None, ends)


async def replace_ciphertexts(
    conn: AsyncConnection,
    organization_id: UUID,
    *,
    old: tuple[str | None, str | None],
    new: tuple[str | None, str | None],
) -> bool:
    """Compare-and-set of both ciphertexts (key rotation): a row a refresh changed meanwhile is left alone."""
    result = await conn.execute(
        update(qbo_connections)
        .where(qbo_connections.c.organization_id == organization_id)
        .where(_same(qbo_connections.c.access_token_ciphertext, old[0]))
        .where(_same(qbo_connections.c.refresh_token_ciphertext, old[1]))
        .values(access_token_ciphertext=new[0], refresh_token_ciphertext=new[1])
    )
    return bool(result.rowcount)


def _same(column: Any, value: str | None) -> Any:
    return column.is_(None) if value is None else column == value


# ---- OAuth states -------------------------------------------------------------------------------------------------
async def insert_state(
    conn: AsyncConnection, *, nonce: str, organization_id: UUID, expires_at: datetime, now: datetime
) -> None:
    await conn.execute(
        oauth_states.insert().values(
            nonce=nonce, organization_id=organization_id, expires_at=expires_at, created_at=now
        )
    )


async def consume_state(conn: AsyncConnection, *, nonce: str, organization_id: UUID, now: datetime) -> bool:
    """Delete the state's row; True only for the first consumer of a live, matching state."""
    result = await conn.execute(
        delete(oauth_states)
        .where(oauth_states.c.nonce == nonce)
        .where(oauth_states.c.organization_id == organization_id)
        .where(oauth_states.c.expires_at > now)
    )
    return result.rowcount == 1


async def purge_states(conn: AsyncConnection, now: datetime) -> int:
    result = await conn.execute(delete(oauth_states).where(oauth_states.c.expires_at <= now))
    return int(result.rowcount or 0)


# ---- outbox -------------------------------------------------------------------------------------------------------
async def enqueue_outbox(
    conn: AsyncConnection,
    *,
    event_id: UUID,
    organization_id: UUID,
    event_type: str,
    record: Mapping[str, Any],
    now: datetime,
) -> None:
    await conn.execute(
        connection_event_outbox.insert().values(
            event_id=event_id,
            organization_id=organization_id,
            event_type=event_type,
            record=dict(record),
            created_at=now,
        )
    )


async def pending_outbox(conn: AsyncConnection, *, limit: int = 100) -> list[tuple[int, dict[str, Any]]]:
    rows = await conn.execute(
        select(connection_event_outbox.c.seq, connection_event_outbox.c.record)
        .order_by(connection_event_outbox.c.seq)
        .limit(limit)
    )
    return [(int(row.seq), dict(row.record)) for row in rows]


async def delete_outbox(conn: AsyncConnection, seqs: Sequence[int]) -> None:
    if seqs:
        await conn.execute(delete(connection_event_outbox).where(connection_event_outbox.c.seq.in_(list(seqs))))
