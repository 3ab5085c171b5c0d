"""``QboConnected`` / ``QboConnectionLost`` on ``qbsync.connections``, through a transactional outbox.

A connection change and the event announcing it are written in one database transaction (``connected`` /
``lost``); after the commit ``kick`` publishes it in the background (a request never waits for the broker) and it is
deleted once the broker acknowledged it. A crash or a broker outage in
between delays the event — the background loop and the next start-up publish it — but never loses it, and an event
is only ever written for a real transition, so sync services see one ``QboConnectionLost`` per loss. A crash after
the send and before the delete may send an event twice with the same ``event_id``; consumers de-duplicate by it.

``entity_id`` is the organization and ``entity_version`` the organization's connection-event counter (stored on its
connection row, incremented in the same transaction).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Literal
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from qbsync.contracts.outbound import (
    QboConnected,
    QboConnectedPayload,
    QboConnectionLost,
    QboConnectionLostPayload,
)
from qbsync.persistence.database import Database
from qbsync.runtime.kafka import OutboundRecord, Publisher, record_for
from token_manager import store

__all__ = ["ConnectionEvents", "LostReason"]

log = logging.getLogger("token_manager.events")

LostReason = Literal["refresh_failed", "revoked", "disconnected", "expired"]
Environment = Literal["production", "sandbox", "emulator"]


class ConnectionEvents:
    """Builds connection events, stores them with the change, and publishes them in order."""

    def __init__(self, db: Database, publisher: Publisher, *, environment: Environment) -> None:
        self._db = db
        self._publisher = publisher
        self._environment: Environment = environment
        self._flush_lock = asyncio.Lock()
        self._pending = False
        self._drainer: asyncio.Task[None] | None = None

    async def connected(
        self,
        conn: AsyncConnection,
        *,
        organization_id: UUID,
        realm_id: str,
        company_name: str | None,
        version: int,
        now: datetime,
    ) -> None:
        event = QboConnected(
            event_id=uuid.uuid4(),
            event_type="QboConnected",
            schema_version=1,
            occurred_at=now,
            organization_id=organization_id,
            entity_id=organization_id,
            entity_version=version,
            payload=QboConnectedPayload(
                realm_id=realm_id, company_name=company_name, environment=self._environment, connected_at=now
            ),
        )
        await self._enqueue(conn, event.event_id, organization_id, event.event_type, record_for(event), now)

    async def lost(
        self,
        conn: AsyncConnection,
        *,
        organization_id: UUID,
        realm_id: str | None,
        reason: LostReason,
        message: str,
        version: int,
        now: datetime,
    ) -> None:
        event = QboConnectionLost(
            event_id=uuid.uuid4(),
            event_type="QboConnectionLost",
            schema_version=1,
            occurred_at=now,
            organization_id=organization_id,
            entity_id=organization_id,
            entity_version=version,
            payload=QboConnectionLostPayload(realm_id=realm_id, reason=reason, message=message[:1000], lost_at=now),
        )
        await self._enqueue(conn, event.event_id, organization_id, event.event_type, record_for(event), now)

    async def _enqueue(
        self,
        conn: AsyncConnection,
        event_id: UUID,
        organization_id: UUID,
        event_type: str,
        record: OutboundRecord,
        now: datetime,
    ) -> None:
        await store.enqueue_outbox(
            conn,
            event_id=event_id,
            organization_id=organization_id,
            event_type=event_type,
            record=record.to_json(),
            now=now,
        )

    async def flush(self) -> int:
        """Publish every stored event, oldest first; returns how many went out. Raises if the broker fails."""
        sent = 0
        async with self._flush_lock:
            while True:
                async with self._db.connect() as conn:
                    batch = await store.pending_outbox(conn)
                if not batch:
                    return sent
                for seq, record in batch:  # one at a time: per-organization order is the order of the changes
                    await self._publisher.send(OutboundRecord.from_json(record))
                    async with self._db.transaction() as conn:
                        await store.delete_outbox(conn, [seq])
                    sent += 1

    def kick(self) -> None:
        """Publish what was just committed, in the background: a request never waits for the broker.

        Kicks while a flush runs are coalesced into one more pass; if the broker is down the events stay in the
        outbox and the background loop retries them.
        """
        self._pending = True
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="connection events")

    async def _drain(self) -> None:
        while self._pending:
            self._pending = False
            await self.flush_quietly()

    async def aclose(self) -> None:
        """Stop a background flush (what it did not send stays in the outbox for the next start)."""
        if self._drainer is not None:
            self._drainer.cancel()
            await asyncio.gather(self._drainer, return_exceptions=True)

    async def flush_quietly(self) -> None:
        """Flush after a commit; a failure is logged and left to the background loop (the events are stored)."""
        try:
            await self.flush()
        except Exception as exc:  # broker or database trouble: the outbox keeps the events
            log.warning("connection events not published yet (%s); the outbox retries them", type(exc).__name__)

    async def run(self, interval_seconds: float) -> None:
        """Background loop: publish what a failed or crashed flush left behind. Never returns."""
        while True:
            await self.flush_quietly()
            await asyncio.sleep(interval_seconds)
