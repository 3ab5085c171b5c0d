"""pull-sync's tables: the migration branch creates exactly what the code declares; the pull lease is exclusive."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData

from pull_sync import store
from pull_sync.deps import Deps
from qbsync.persistence import Database, upgrade
from qbsync.persistence.tables import metadata as runtime_metadata
from qbsync.runtime import DependencyNotReady
from qbsync.settings import DatabaseSettings, PullSyncSettings


@pytest.fixture
async def db(database_settings: DatabaseSettings) -> AsyncIterator[Database]:
    database = await Database.open("pull-sync", database_settings)
    await upgrade(database, ("runtime", "pull_sync"), version_locations=(store.MIGRATIONS,))
    await upgrade(database, ("runtime", "pull_sync"), version_locations=(store.MIGRATIONS,))  # idempotent
    try:
        yield database
    finally:
        await database.close()


async def test_the_pull_sync_branch_creates_exactly_the_tables_the_code_declares(db: Database) -> None:
    declared = MetaData()
    for table in (*runtime_metadata.tables.values(), *store.metadata.tables.values()):
        table.to_metadata(declared)

    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, declared))

    async with db.connect() as conn:
        differences = await conn.run_sync(diff)
    differences = [d for d in differences if not (d[0] == "remove_table" and d[1].name == "alembic_version")]
    assert differences == [], differences


async def test_a_lease_is_held_by_one_holder_until_released_or_expired(db: Database) -> None:
    org, now = uuid.uuid4(), datetime.now(UTC)

    async def acquire(holder: str, at: datetime) -> bool:
        async with db.transaction() as conn:
            return await store.acquire_lease(
                conn, org, "items", holder=holder, now=at, expires_at=at + timedelta(minutes=2)
            )

    assert await acquire("a", now)
    assert not await acquire("b", now + timedelta(seconds=30))
    async with db.transaction() as conn:
        await store.release_lease(conn, org, "items", "b")  # not b's: nothing happens
    assert not await acquire("b", now + timedelta(seconds=31))
    assert await acquire("b", now + timedelta(minutes=3)), "a's lease expired (its holder died)"
    async with db.transaction() as conn:
        await store.release_lease(conn, org, "items", "b")
    assert await acquire("c", now + timedelta(minutes=3))


async def test_a_second_pull_of_the_same_kind_waits_then_goes_to_the_retry_ladder(db: Database) -> None:
    deps = Deps(
        qbo=cast(Any, None),
        publisher=cast(Any, None),
        db=db,
        settings=PullSyncSettings(),
        clock=lambda: datetime.now(UTC),
        replica="test",
        lease_ttl=timedelta(minutes=5),
        lease_wait_seconds=0.3,
    )
    org = uuid.uuid4()
    async with deps.exclusive(org, "payments"):
        async with deps.exclusive(org, "items"):  # another kind runs alongside
            pass
        with pytest.raises(DependencyNotReady, match="payments pull"):
            async with deps.exclusive(org, "payments"):
                pytest.fail("entered a held lease")
    async with deps.exclusive(org, "payments"):  # released on exit
        pass
