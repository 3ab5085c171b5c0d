"""One service's database: an async SQLAlchemy engine plus the rules of using it.

* Embedded default: a SQLite file per service (``var/data/<service>.db``) in WAL mode. SQLite allows one writer at a
  time, so write transactions take an in-process lock instead of colliding on ``database is locked``.
* Production: PostgreSQL, one schema per service (``customer_sync``, ...) via ``search_path``, so services share a
  server without ever sharing a table.

Use ``async with db.transaction() as conn`` for writes (one short transaction; never hold it across a QBO call) and
``async with db.connect() as conn`` for reads.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from qbsync.settings import DatabaseSettings

__all__ = ["Database", "database_url_for", "schema_for"]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def schema_for(service: str, settings: DatabaseSettings) -> str:
    schema = settings.schema_name or service.replace("-", "_")
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid PostgreSQL schema name {schema!r}")
    return schema


def database_url_for(service: str, settings: DatabaseSettings) -> URL:
    """The URL ``service`` uses: the configured one, or its own SQLite file under ``data_dir``."""
    if settings.url is not None:
        return make_url(settings.url.get_secret_value())
    path = (settings.data_dir / f"{service}.db").resolve()
    return make_url(f"sqlite+aiosqlite:///{path}")


class Database:
    """The engine of one service plus write discipline. Create with :meth:`open`, close with :meth:`close`."""

    def __init__(self, engine: AsyncEngine, *, schema: str | None) -> None:
        self.engine = engine
        self.schema = schema
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # PostgreSQL reads run outside a transaction: under READ COMMITTED (the default) every statement takes its
        # own snapshot either way, so BEGIN and ROLLBACK around a read are two round trips that change nothing.
        self._reader = engine if self.is_sqlite else engine.execution_options(isolation_level="AUTOCOMMIT")

    @classmethod
    async def open(cls, service: str, settings: DatabaseSettings) -> Database:
        url = database_url_for(service, settings)
        if url.get_backend_name() == "sqlite":
            return cls(_sqlite_engine(url, settings), schema=None)
        if url.get_backend_name() == "postgresql":
            schema = schema_for(service, settings)
            engine = _postgres_engine(url, settings, schema)
            async with engine.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            return cls(engine, schema=schema)
        raise ValueError(f"unsupported database backend {url.get_backend_name()!r} (use sqlite or postgresql)")

    @property
    def serialises_writes(self) -> bool:
        """Whether write transactions run one at a time (SQLite: one commits before the next begins)."""
        return self._write_lock is not None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A short write transaction: committed on success, rolled back on error."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A read connection: never write through it (on PostgreSQL each statement would commit on its own)."""
        async with self._reader.connect() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()


def _sqlite_engine(url: URL, settings: DatabaseSettings) -> AsyncEngine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=settings.echo, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def _postgres_engine(url: URL, settings: DatabaseSettings, schema: str) -> AsyncEngine:
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")
    if url.drivername != "postgresql+asyncpg":
        raise ValueError("PostgreSQL URLs must use the asyncpg driver (postgresql+asyncpg://...)")
    engine = create_async_engine(
        url,
        echo=settings.echo,
        pool_size=settings.pool_size,
        connect_args={"server_settings": {"search_path": schema, "application_name": f"qbsync-{schema}"}},
    )
    _ping_after_idle(engine, settings.ping_after_idle_seconds)
    return engine


def _ping_after_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection before use only if it sat idle longer than ``idle_seconds``.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout; on asyncpg that is BEGIN, a query and ROLLBACK — three
    round trips, and a service checks a connection out several times per record. A connection the server dropped
    while the service was busy (a restart, a failover) fails its next statement instead: SQLAlchemy sees the
    disconnect and invalidates the pool (every older connection is replaced on its next checkout), and the failed
    step is retried like any transient database error (in place for an outcome, through the ladder for a handler).
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["qbsync_idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("qbsync_idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return  # new (just connected) or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the server dropped it: the pool connects afresh and checks out again
            raise DisconnectionError(f"pooled connection failed its ping: {exc}") from exc
