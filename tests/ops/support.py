"""Helpers for the operations tests: ledgers filled through the runtime's own ledger functions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from qbsync.persistence import Database, upgrade
from qbsync.runtime import ledger
from qbsync.settings import DatabaseSettings


async def open_ledger(service: str, settings: DatabaseSettings) -> Database:
    """A service database with the runtime tables (what every service has after its start-up migrations)."""
    db = await Database.open(service, settings)
    await upgrade(db, ("runtime",))
    return db


async def write_entry(
    db: Database,
    service: str,
    *,
    status: str,
    entity_type: str = "customer",
    organization_id: uuid.UUID | None = None,
    at: datetime | None = None,
    event_id: uuid.UUID | None = None,
    **fields: Any,
) -> ledger.LedgerEntry:
    """One ledger row as the runtime writes it (``at`` = its last update)."""
    now = at or datetime.now(UTC)
    entry = ledger.LedgerEntry(
        service=service,
        event_id=event_id or uuid.uuid4(),
        event_type=fields.pop("event_type", "CustomerCreated"),
        organization_id=organization_id or uuid.uuid4(),
        entity_type=entity_type,
        entity_id=fields.pop("entity_id", uuid.uuid4()),
        entity_version=fields.pop("entity_version", 1),
        direction="push",
        status=status,
        attempts=fields.pop("attempts", 1),
        max_attempts=3,
        source_topic=fields.pop("source_topic", "batchly.customers"),
        source_partition=fields.pop("source_partition", 0),
        source_offset=fields.pop("source_offset", 0),
        now=now,
        occurred_at=fields.pop("occurred_at", now - timedelta(seconds=2)),
        last_attempt_at=now,
        completed=status in ("completed", "ignored"),
        **fields,
    )
    async with db.transaction() as conn:
        await ledger.upsert_ledger(conn, entry)
    return entry
