"""What pull-sync's use cases share, built once in the composition root (``app.py``)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from pull_sync import store
from qbsync.persistence.database import Database
from qbsync.qbo import QboClient
from qbsync.runtime import DependencyNotReady, Publisher
from qbsync.settings import PullSyncSettings

__all__ = ["Clock", "Deps", "system_clock"]

log = logging.getLogger(__name__)

#: The business clock: "today" for due dates, and when schedule slots are due. Tests move it.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    qbo: QboClient
    publisher: Publisher
    db: Database
    settings: PullSyncSettings
    clock: Clock
    #: Identifies this process in leases and schedule claims.
    replica: str
    #: A lease outlives the longest a handler may run (the runtime cancels it then) by a margin.
    lease_ttl: timedelta
    #: How long a pull waits for another one of the same kind and organization before the ladder retries it.
    lease_wait_seconds: float = 30.0

    @asynccontextmanager
    async def exclusive(self, org: UUID, kind: str) -> AsyncIterator[None]:
        """One pull of ``kind`` per organization at a time, across replicas (a lease row with an expiry, so a
        replica that dies holding it blocks the others only until it expires)."""
        holder = f"{self.replica}/{uuid.uuid4().hex[:8]}"  # per pull: two pulls of one process are two holders
        deadline = time.monotonic() + self.lease_wait_seconds
        delay = 0.05
        while True:
            now = datetime.now(UTC)
            async with self.db.transaction() as conn:
                taken = await store.acquire_lease(
                    conn, org, kind, holder=holder, now=now, expires_at=now + self.lease_ttl
                )
            if taken:
                break
            if time.monotonic() >= deadline:
                raise DependencyNotReady(
                    f"another {kind} pull of this organization is still running", code="pull_in_progress"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        try:
            yield
        finally:
            async with self.db.transaction() as conn:
                await store.release_lease(conn, org, kind, holder)
