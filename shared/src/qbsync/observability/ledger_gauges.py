"""Ledger gauges: what each service's sync ledger says right now, exported as Prometheus gauges.

The Sync Dashboard needs state, not just rates: how many records are queued or failed, how many failed in the last
seven days, and when each entity type last synced. Counters cannot say that after a restart; the ledger can. Every
service runs one :class:`LedgerGauges` task over its own database (never another service's), refreshing every
``interval`` seconds with cheap indexed queries:

* queued and failed counts — ``status IN (...)`` over ``ix_sync_ledger_status_updated``; those rows are few;
* failed in 7 days — a range over ``(status, updated_at)``;
* last completed sync per entity type — incremental: only rows completed since the previous refresh are read, so
  the cost does not grow with the ledger (the first refresh looks back ``LAST_SYNC_LOOKBACK``).

Labels are the service, the entity type (a registry name) and the status — never an organization or entity id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from qbsync.contracts.registry import lookup_type
from qbsync.persistence.database import Database
from qbsync.persistence.tables import sync_ledger
from qbsync.runtime import metrics
from qbsync.runtime.handlers import HandlerRegistry

__all__ = [
    "DEFAULT_INTERVAL_SECONDS",
    "FAILED_WINDOW",
    "LAST_SYNC_LOOKBACK",
    "QUEUED_STATUSES",
    "LedgerGauges",
    "LedgerSnapshot",
    "prime_series",
    "sync_entity_types",
]

log = logging.getLogger("qbsync.observability")

#: The ledger statuses counted by ``qbsync_ledger_records``: waiting for an attempt, or failed (manual retry).
#: ``deferred`` (customer updates held for the nightly batch) is left out: its ledger row keeps that status after
#: the flush, so a count of it would only ever grow.
QUEUED_STATUSES: tuple[str, ...] = ("pending", "retrying", "parked", "failed")
FAILED_WINDOW = timedelta(days=7)
LAST_SYNC_LOOKBACK = timedelta(days=30)
DEFAULT_INTERVAL_SECONDS = 15.0

_ERROR_CLASSES = ("transient", "dependency", "internal", "auth_lost", "permanent", "malformed")


@dataclass
class LedgerSnapshot:
    """One refresh's reading of the ledger."""

    queued: dict[tuple[str, str], int] = field(default_factory=dict)
    failed_7d: dict[str, int] = field(default_factory=dict)
    last_completed: dict[str, datetime] = field(default_factory=dict)


class LedgerGauges:
    """Reads ``db``'s ledger and sets the ``qbsync_ledger_*`` / ``qbsync_last_sync_*`` gauges for ``service``."""

    def __init__(
        self,
        service: str,
        db: Database,
        *,
        entity_types: tuple[str, ...] = (),
        interval: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.service = service
        self.db = db
        self.interval = interval
        self._clock = clock
        self._last_completed: dict[str, datetime] = {}
        self._watermark: datetime | None = None
        #: Label sets published before (or known up front): a count that drops to zero is set to 0, not left at its
        #: old value, and the entity types this service syncs answer "0 queued" from the start instead of nothing.
        self._queued_seen: set[tuple[str, str]] = {(t, s) for t in entity_types for s in QUEUED_STATUSES}
        self._failed_seen: set[str] = set(entity_types)

    async def run(self) -> None:
        """Refresh until cancelled. A failed refresh (database away) is logged and tried again next interval."""
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except (SQLAlchemyError, OSError) as exc:
                log.warning("%s: ledger gauges not refreshed (%s: %s)", self.service, type(exc).__name__, exc)
            await asyncio.sleep(self.interval)

    async def refresh(self) -> LedgerSnapshot:
        """Read the ledger once and publish the gauges; returns what was read."""
        snapshot = await self.read()
        self._publish(snapshot)
        return snapshot

    async def read(self) -> LedgerSnapshot:
        now = self._clock()
        since = self._watermark or now - LAST_SYNC_LOOKBACK
        c = sync_ledger.c
        async with self.db.connect() as conn:
            queued_rows = await conn.execute(
                select(c.entity_type, c.status, func.count())
                .where(c.status.in_(QUEUED_STATUSES))
                .group_by(c.entity_type, c.status)
            )
            queued = {(str(t), str(s)): int(n) for t, s, n in queued_rows}
            failed_rows = await conn.execute(
                select(c.entity_type, func.count())
                .where(c.status == "failed", c.updated_at >= now - FAILED_WINDOW)
                .group_by(c.entity_type)
            )
            failed = {str(t): int(n) for t, n in failed_rows}
            completed_rows = await conn.execute(
                select(c.entity_type, func.max(c.updated_at))
                .where(c.status == "completed", c.updated_at >= since)
                .group_by(c.entity_type)
            )
            for entity_type, moment in completed_rows:
                if moment is not None:
                    previous = self._last_completed.get(str(entity_type))
                    if previous is None or moment > previous:
                        self._last_completed[str(entity_type)] = moment
        # Rows committed a little after ``now`` with an earlier timestamp are caught by the overlap.
        self._watermark = now - timedelta(seconds=max(self.interval, 1.0) * 2)
        return LedgerSnapshot(queued=queued, failed_7d=failed, last_completed=dict(self._last_completed))

    def _publish(self, snapshot: LedgerSnapshot) -> None:
        for entity_type, status in self._queued_seen | set(snapshot.queued):
            count = snapshot.queued.get((entity_type, status), 0)
            metrics.LEDGER_RECORDS.labels(self.service, entity_type, status).set(count)
        self._queued_seen |= set(snapshot.queued)
        for entity_type in self._failed_seen | set(snapshot.failed_7d):
            metrics.LEDGER_FAILED_7D.labels(self.service, entity_type).set(snapshot.failed_7d.get(entity_type, 0))
        self._failed_seen |= set(snapshot.failed_7d)
        for entity_type, moment in snapshot.last_completed.items():
            metrics.LAST_SYNC.labels(self.service, entity_type).set(moment.timestamp())


def sync_entity_types(registry: HandlerRegistry) -> tuple[str, ...]:
    """Entity types of the events a service syncs (handlers that need a QuickBooks connection)."""
    return tuple(
        sorted(
            {
                spec.entity_type
                for event_type in registry.handled_types()
                if registry.needs_connection(event_type)
                for spec in lookup_type(event_type)
            }
        )
    )


def prime_series(service: str, *, retry_tiers: int) -> None:
    """Create this service's dead-letter and retry counters at zero.

    ``increase()`` and ``rate()`` need a sample before the first increment: without it the first dead letter of a
    service would never show in an alert or a panel.
    """
    for error_class in _ERROR_CLASSES:
        metrics.DEAD_LETTERS.labels(service, error_class)
    for tier in range(1, retry_tiers + 1):
        metrics.RETRIES.labels(service, str(tier))
    metrics.PARKED.labels(service)
