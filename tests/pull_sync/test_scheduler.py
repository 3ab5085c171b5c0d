"""The scheduler under a moved clock: local times per time zone, Sunday-only tax, a daylight saving change, two
replicas sharing one database (SQLite file and PostgreSQL schema) — every slot runs exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from pull_sync import store
from pull_sync.scheduler import Scheduler
from qbsync.contracts.batchly import OrganizationPayload
from qbsync.contracts.outbound import PullRequested
from qbsync.persistence import Database, upgrade
from qbsync.persistence.organizations import upsert_organization
from qbsync.runtime import Publisher
from qbsync.runtime.ledger import set_connection_state
from qbsync.settings import DatabaseSettings, PullSyncSettings
from tests.pull_sync.harness import FakeClock

STEP = timedelta(minutes=30)


class RecordingPublisher:
    """Records every scheduled pull with the (fake) time it was published at."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[PullRequested, datetime]] = []
        self.broken = False

    async def publish(self, *envelopes: Any) -> None:
        if self.broken:
            raise ConnectionError("broker unreachable")
        self.sent.extend((e, self.clock()) for e in envelopes)


@pytest.fixture
async def db(database_settings: DatabaseSettings) -> AsyncIterator[Database]:
    database = await Database.open("pull-sync", database_settings)
    await upgrade(database, ("runtime", "pull_sync"), version_locations=(store.MIGRATIONS,))
    try:
        yield database
    finally:
        await database.close()


async def _organization(db: Database, timezone: str, *, connected: bool = True, active: bool = True) -> uuid.UUID:
    org = uuid.uuid4()
    async with db.transaction() as conn:
        await set_connection_state(
            conn,
            organization_id=org,
            status="connected" if connected else "lost",
            realm_id=f"realm-{org.hex[:6]}",
            reason=None,
            changed_at=datetime.now(UTC),
            event_id=uuid.uuid4(),
        )
        payload = OrganizationPayload(organization_id=org, name="Org", timezone=timezone, active=active)
        await upsert_organization(conn, payload, version=1, now=datetime.now(UTC))
    return org


def _replica(db: Database, clock: FakeClock, name: str, **options: Any) -> tuple[Scheduler, RecordingPublisher]:
    publisher = RecordingPublisher(clock)
    scheduler = Scheduler(db, cast(Publisher, publisher), PullSyncSettings(), clock=clock, replica=name, **options)
    return scheduler, publisher


async def test_two_replicas_run_every_slot_once_at_local_time_across_time_zones_sundays_and_dst(db: Database) -> None:
    zones = {
        "la": await _organization(db, "America/Los_Angeles"),
        "tokyo": await _organization(db, "Asia/Tokyo"),
        "london": await _organization(db, "Europe/London"),
    }
    disconnected = await _organization(db, "America/Los_Angeles", connected=False)
    deactivated = await _organization(db, "America/Los_Angeles", active=False)
    start = datetime(2026, 3, 6, 0, 0, tzinfo=UTC)  # Fri 09:00 in Tokyo; LA moves its clocks Sun 2026-03-08 02:00
    clock = FakeClock(start)
    a, pub_a = _replica(db, clock, "replica-a")
    b, pub_b = _replica(db, clock, "replica-b")
    while clock.now < datetime(2026, 3, 10, 0, 0, tzinfo=UTC):
        await asyncio.gather(a.tick(), b.tick())
        clock.set(clock.now + STEP)

    sent = pub_a.sent + pub_b.sent
    keys = Counter((e.organization_id, e.payload.slot) for e, _ in sent)
    assert keys
    assert max(keys.values()) == 1, "no slot ran twice"
    assert {org for org, _ in keys} == set(zones.values()), "disconnected and deactivated organizations never"
    assert not {disconnected, deactivated} & {org for org, _ in keys}
    expected = {"payments": time(2), "customers_flush": time(3), "items": time(4), "reconcile": time(1, 30)}
    names = {v: k for k, v in zones.items()}
    for event, published_at in sent:
        zone = ZoneInfo(
            {"la": "America/Los_Angeles", "tokyo": "Asia/Tokyo", "london": "Europe/London"}[
                names[event.organization_id]
            ]
        )
        slot = event.payload.slot
        assert slot is not None
        job, day = slot.split("@")
        local = published_at.astimezone(zone)
        assert event.payload.reason == "schedule"
        assert event.payload.kind == job
        assert local.date().isoformat() == day
        due = datetime.combine(local.date(), time(2) if job == "tax" else expected[job], tzinfo=zone).astimezone(UTC)
        if due < start:  # the replicas started after it: caught up at once if at most 6 hours late
            assert published_at == start, (slot, local)
            assert start - due <= timedelta(hours=6), slot
        else:
            assert due <= published_at < due + STEP, (slot, local)
        if job == "tax":
            assert local.weekday() == 6, "tax runs on Sundays, in the organization's own week"
    la_days = {e.payload.slot for e, _ in sent if e.organization_id == zones["la"]}
    assert {"tax@2026-03-08", "payments@2026-03-08", "reconcile@2026-03-08"} <= la_days
    la_payments = next(
        t for e, t in sent if e.organization_id == zones["la"] and e.payload.slot == "payments@2026-03-08"
    )
    assert la_payments == datetime(2026, 3, 8, 10, 0, tzinfo=UTC), "02:00 did not exist that night: 03:00 PDT"
    per_job = {
        name: Counter((slot or "").split("@")[0] for (o, slot) in keys if o == org) for name, org in zones.items()
    }
    # Fri 00:00Z .. Tue 00:00Z: four of each daily job; Tokyo starts at 09:00 and catches up its 03:00 and 04:00
    # slots (at most 6 hours late) but not 02:00 or 01:30; one Sunday each.
    daily = {"payments": 4, "customers_flush": 4, "items": 4, "reconcile": 4, "tax": 1}
    assert per_job["la"] == Counter(daily)
    assert per_job["london"] == Counter(daily)
    assert per_job["tokyo"] == Counter(daily | {"customers_flush": 5, "items": 5})


async def test_a_slot_claimed_by_a_replica_that_stopped_before_publishing_is_published_by_another(
    db: Database,
) -> None:
    org = await _organization(db, "America/Chicago")
    clock = FakeClock(datetime(2026, 5, 4, 7, 5, tzinfo=UTC))  # 02:05 in Chicago: payments and reconcile due
    a, pub_a = _replica(db, clock, "replica-a")
    b, pub_b = _replica(db, clock, "replica-b", orphan_after=timedelta(0))
    pub_a.broken = True
    with pytest.raises(ConnectionError):
        await a.tick()  # claimed the first due slot, then the broker failed
    fired = await b.tick()
    slots = sorted(e.payload.slot or "" for e, _ in pub_b.sent)
    assert slots == ["payments@2026-05-04", "reconcile@2026-05-04"], "the orphan and the one a never reached"
    assert {f.organization_id for f in fired} == {org}
    assert await b.tick() == [], "published claims are not published again"
    pub_a.broken = False
    assert await a.tick() == []
    assert pub_a.sent == []


async def test_of_many_concurrent_claims_of_one_slot_exactly_one_wins(db: Database) -> None:
    org = uuid.uuid4()
    fire_at = datetime(2026, 5, 4, 7, 0, tzinfo=UTC)

    async def claim(replica: int) -> bool:
        async with db.transaction() as conn:
            return await store.claim_slot(
                conn,
                org,
                slot="payments@2026-05-04",
                job="payments",
                fire_at=fire_at,
                event_id=uuid.uuid4(),
                holder=f"replica-{replica}",
                now=datetime.now(UTC),
            )

    outcomes = await asyncio.gather(*(claim(i) for i in range(12)))
    assert outcomes.count(True) == 1
    async with db.connect() as conn:
        assert await store.claimed_slots(conn, org, ["payments@2026-05-04", "items@2026-05-04"]) == {
            "payments@2026-05-04"
        }
