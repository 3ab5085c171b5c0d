"""The PostgreSQL pool: a connection is pinged only after it sat idle, and a dropped one never reaches a caller twice.

The server drops a pooled connection (``pg_terminate_backend``: what a restart or a failover does to every one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from qbsync.persistence.database import Database
from qbsync.runtime.errors import classify
from qbsync.settings import DatabaseSettings

pytestmark = pytest.mark.postgres


async def _backend_pid(db: Database) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(admin: Database, pid: int) -> None:
    """Drop backend ``pid`` from another engine's connection, and wait until it is gone."""
    async with admin.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    for _ in range(50):  # the backend's exit is asynchronous
        async with admin.connect() as conn:
            alive = (
                await conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid})
            ).scalar_one()
        if not alive:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"backend {pid} still alive")


@asynccontextmanager
async def _pool_and_admin(base: DatabaseSettings, *, idle: float) -> AsyncIterator[tuple[Database, int, Database]]:
    """A service's pool pinging after ``idle`` seconds, the backend of the connection it just used, and a second
    engine to drop backends from."""
    settings = base.model_copy(update={"ping_after_idle_seconds": idle, "pool_size": 2})
    db = await Database.open("pool-under-test", settings)
    admin = await Database.open("pool-admin", base)
    try:
        yield db, await _backend_pid(db), admin
    finally:
        await db.close()
        await admin.close()


async def test_a_connection_dropped_while_idle_is_replaced_before_anyone_uses_it(
    postgres_database_settings: DatabaseSettings,
) -> None:
    async with _pool_and_admin(postgres_database_settings, idle=0.3) as (db, pid, admin):
        await _terminate(admin, pid)
        await asyncio.sleep(0.4)  # idle past the threshold: pinged on checkout
        for _ in range(3):
            assert await _backend_pid(db) != pid  # no error reaches the caller


async def test_a_busy_connection_is_not_pinged_and_a_drop_costs_one_failed_statement_then_the_pool_heals(
    postgres_database_settings: DatabaseSettings,
) -> None:
    async with _pool_and_admin(postgres_database_settings, idle=3600.0) as (db, pid, admin):
        await _terminate(admin, pid)
        # Not pinged (used a moment ago): the dropped connection is handed out and its statement fails, marked as
        # a disconnect (what the runtime retries) — proof that checkouts of busy connections cost no round trips.
        with pytest.raises(DBAPIError) as raised:
            await _backend_pid(db)
        assert raised.value.connection_invalidated, "a dropped connection is reported as a disconnect"
        assert classify(raised.value).error_class == "transient", "a handler meeting it retries, not a bug"
        # SQLAlchemy invalidated the pool on that disconnect: every later checkout works.
        pids = {await _backend_pid(db) for _ in range(4)}
        assert pid not in pids
