"""The scheduled pull producers (seed "Sync Frequency & Timing"), a background task of every pull-sync replica.

Every ``scheduler_interval_seconds`` each replica looks, for every organization connected to QuickBooks, for the
slots due in the organization's time zone (:mod:`qbsync.domain.schedule`): payments daily 2 AM, the customer-update
flush daily 3 AM, items daily 4 AM, tax Sunday 2 AM and the change-feed reconcile, all configurable. A due slot is
claimed with an insert into ``schedule_claims`` whose primary key is (organization, slot): whichever replica inserts
first runs it, the others see it taken — exactly one run per organization per slot. The claim then publishes
``PullRequested(reason="schedule", slot=…)``, consumed like any other pull request (the 3 AM one hands
``FlushCustomerUpdatesRequested`` to customer-sync). A replica that stops between claim and publish leaves the claim
unpublished; any replica re-publishes it a little later under the same event id, which the consumer de-duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from pull_sync import events, metrics, store
from pull_sync.deps import Clock
from qbsync.contracts.outbound import PullKind
from qbsync.domain.schedule import DEFAULT_ZONE, ScheduleSpec, Slot, due_slots, parse_schedule, zone_of
from qbsync.persistence.database import Database
from qbsync.runtime import Publisher
from qbsync.settings import PullSyncSettings

__all__ = ["JOBS", "ORPHAN_AFTER", "Fired", "Scheduler", "jobs_from"]

log = logging.getLogger(__name__)

#: Schedule job -> the pull it requests.
JOBS: dict[str, PullKind] = {
    "payments": "payments",
    "customers_flush": "customers_flush",
    "items": "items",
    "tax": "tax",
    "reconcile": "reconcile",
}
#: A claim left unpublished this long is taken to be orphaned by a stopped replica and published again.
ORPHAN_AFTER = timedelta(seconds=60)


def jobs_from(settings: PullSyncSettings) -> dict[str, ScheduleSpec | None]:
    """The configured schedule (raises ValueError on a malformed entry, so a bad setting stops the start-up)."""
    return {
        "payments": parse_schedule(settings.payments_at),
        "customers_flush": parse_schedule(settings.customer_flush_at),
        "items": parse_schedule(settings.items_at),
        "tax": parse_schedule(settings.tax_at),
        "reconcile": parse_schedule(settings.reconcile_at),
    }


@dataclass(frozen=True, slots=True)
class Fired:
    """A slot this replica claimed and published."""

    organization_id: UUID
    slot: str
    kind: PullKind
    event_id: UUID


class Scheduler:
    def __init__(
        self,
        db: Database,
        publisher: Publisher,
        settings: PullSyncSettings,
        *,
        clock: Clock,
        replica: str,
        orphan_after: timedelta = ORPHAN_AFTER,
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.settings = settings
        self.clock = clock
        self.replica = replica
        self.jobs = jobs_from(settings)
        self.catch_up = timedelta(hours=settings.schedule_catch_up_hours)
        self.orphan_after = orphan_after
        self._unknown_zones: set[str] = set()

    async def run_forever(self) -> None:
        """The background task: tick, sleep, repeat. A failed tick (database or broker down) is logged and the
        next one tries again — claims make a retried slot safe."""
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "scheduler tick failed (%s: %s); next tick in %.0fs",
                    type(exc).__name__,
                    exc,
                    self.settings.scheduler_interval_seconds,
                )
            await asyncio.sleep(self.settings.scheduler_interval_seconds)

    async def tick(self) -> list[Fired]:
        """Claim and publish every due slot of every connected organization; returns what this replica fired."""
        now = self.clock()
        fired = await self._republish_orphans()
        async with self.db.connect() as conn:
            organizations = await store.schedulable_organizations(conn)
        for org, zone_name in organizations:
            zone, known = zone_of(zone_name or DEFAULT_ZONE)  # no settings from Batchly yet: the contract default
            if not known and zone_name not in self._unknown_zones:
                self._unknown_zones.add(zone_name)
                log.warning("organization %s has unknown time zone %r; scheduling it in the default", org, zone_name)
            slots = due_slots(self.jobs, zone, now, catch_up=self.catch_up)
            async with self.db.connect() as conn:
                taken = await store.claimed_slots(conn, org, [s.key for s in slots])
            for slot in slots:
                if slot.key not in taken and (done := await self._fire(org, slot)) is not None:
                    fired.append(done)
        return fired

    async def _fire(self, org: UUID, slot: Slot) -> Fired | None:
        event_id = events.slot_event_id(org, slot.key)
        async with self.db.transaction() as conn:
            claimed = await store.claim_slot(
                conn,
                org,
                slot=slot.key,
                job=slot.job,
                fire_at=slot.fire_at,
                event_id=event_id,
                holder=self.replica,
                now=datetime.now(UTC),
            )
        if not claimed:
            return None  # another replica was first
        kind = JOBS[slot.job]
        await self._publish(org, slot.key, kind, event_id, slot.fire_at)
        log.info("schedule slot %s of %s fired", slot.key, org)
        metrics.SLOTS.labels(slot.job).inc()
        return Fired(org, slot.key, kind, event_id)

    async def _publish(self, org: UUID, slot: str, kind: PullKind, event_id: UUID, fire_at: datetime) -> None:
        await self.publisher.publish(
            events.scheduled_pull(org, kind=kind, slot=slot, event_id=event_id, fire_at=fire_at)
        )
        async with self.db.transaction() as conn:
            await store.mark_slot_published(conn, org, slot, datetime.now(UTC))

    async def _republish_orphans(self) -> list[Fired]:
        async with self.db.connect() as conn:
            orphans = await store.unpublished_claims(conn, datetime.now(UTC) - self.orphan_after)
        fired = []
        for claim in orphans:
            kind = JOBS.get(claim.job)
            if kind is None:
                continue
            log.warning(
                "schedule slot %s of %s was claimed but never published; publishing it now",
                claim.slot,
                claim.organization_id,
            )
            await self._publish(claim.organization_id, claim.slot, kind, claim.event_id, claim.fire_at)
            fired.append(Fired(claim.organization_id, claim.slot, kind, claim.event_id))
        return fired
