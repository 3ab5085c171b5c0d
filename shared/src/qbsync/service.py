"""The shell every qbsync service runs in: composition, start-up order, health, signals, graceful shutdown.

A service provides a :class:`ServiceDefinition` whose ``build`` function registers handlers and creates its own
resources (QBO client, token provider, scheduler, ...). ``run_service`` then does the rest, in this order:
logging -> database + migrations -> topics -> publisher -> service resources -> consumer runtime -> HTTP.
Shutdown runs in reverse on SIGTERM / SIGINT: stop taking records, finish in-flight ones, commit, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute

from qbsync.contracts.batchly import OrganizationUpserted
from qbsync.observability.http import HealthCheck, HttpServer, build_app
from qbsync.observability.ledger_gauges import LedgerGauges, prime_series, sync_entity_types
from qbsync.observability.logging import configure_logging, register_secret
from qbsync.persistence import RUNTIME_BRANCH, Database, upgrade
from qbsync.persistence.organizations import upsert_organization
from qbsync.runtime import ConsumerRuntime, HandlerContext, HandlerRegistry, Publisher, Recorded, ensure_topics
from qbsync.settings import Settings
from qbsync.topics import all_topic_specs

__all__ = ["ServiceContext", "ServiceDefinition", "ServiceParts", "run_service", "serve"]

log = logging.getLogger("qbsync.service")


@dataclass
class ServiceContext:
    """What a service's ``build`` function receives."""

    name: str
    settings: Settings
    db: Database
    publisher: Publisher
    registry: HandlerRegistry


@dataclass
class ServiceParts:
    """What a service's ``build`` function returns."""

    resources: Any = None
    routes: Sequence[BaseRoute] = ()
    checks: dict[str, HealthCheck] = field(default_factory=dict)
    #: Long-running tasks (scheduler, token refresher, ...) started after the runtime and cancelled at shutdown.
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()
    #: Called at shutdown, in reverse order.
    closers: Sequence[Callable[[], Awaitable[None]]] = ()


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    build: Callable[[ServiceContext], Awaitable[ServiceParts]]
    #: Migration branches this service's database needs (the runtime's plus its own).
    migration_branches: tuple[str, ...] = (RUNTIME_BRANCH,)
    #: Directories holding this service's own Alembic versions (its branch).
    migration_locations: tuple[Path, ...] = ()
    #: Sync services track QBO connections (park / resume); token-manager does not.
    track_connections: bool = True
    #: The ledger's direction for this service's syncs: "push" (Batchly -> QBO) or "pull" (QBO -> Batchly).
    direction: str = "push"
    #: Runtime settings this service needs by default (an operator's explicit setting still wins), e.g. more records
    #: in flight per partition so a company's invoices fill batches of 30.
    runtime_defaults: dict[str, Any] = field(default_factory=dict)


async def run_service(definition: ServiceDefinition, settings: Settings) -> int:
    """Run until SIGTERM/SIGINT (exit code 0) or until the runtime fails (exit code 1)."""
    name = definition.name
    # This service's share of each QuickBooks company's budget (the services together stay under QBO's limits).
    runtime_settings = settings.runtime.model_copy(
        update={k: v for k, v in definition.runtime_defaults.items() if k not in settings.runtime.model_fields_set}
    )
    settings = settings.model_copy(
        update={"qbo": settings.qbo_budget.for_service(settings.qbo, name), "runtime": runtime_settings}
    )
    configure_logging(name, level=settings.logging.level, fmt=settings.logging.format)
    _register_secrets(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    db = await Database.open(name, settings.database)
    publisher = Publisher(settings.kafka, client_id=name, topic_prefix=settings.topics.prefix)
    closers: list[Callable[[], Awaitable[None]]] = [db.close]
    background: list[asyncio.Task[None]] = []
    runtime: ConsumerRuntime | None = None
    http: HttpServer | None = None
    exit_code = 0
    try:
        if settings.database.migrate_on_start:
            await upgrade(db, definition.migration_branches, version_locations=definition.migration_locations)
        if settings.kafka.create_topics:
            await ensure_topics(settings.kafka, settings.topics, platform_topics(settings), client_id=name)
        await publisher.start()
        closers.append(publisher.stop)
        registry = HandlerRegistry()
        parts = await definition.build(ServiceContext(name, settings, db, publisher, registry))
        closers.extend(parts.closers)
        if registry.get(OrganizationUpserted.EVENT_TYPE) is None:
            registry.register(OrganizationUpserted, _remember_organization, needs_connection=False)
        runtime = ConsumerRuntime(
            service=name,
            registry=registry,
            db=db,
            publisher=publisher,
            kafka=settings.kafka,
            settings=settings.runtime,
            resources=parts.resources,
            track_connections=definition.track_connections,
            direction=definition.direction,
        )
        await runtime.start()
        background = [asyncio.create_task(job(), name=f"{name} background") for job in parts.background]
        prime_series(name, retry_tiers=len(settings.runtime.retry_delays_seconds))
        gauges = LedgerGauges(name, db, entity_types=sync_entity_types(registry))
        background.append(asyncio.create_task(gauges.run(), name=f"{name} ledger gauges"))
        checks = {"database": _database_check(db), "consumer": _consumer_check(runtime), **parts.checks}
        http = HttpServer(
            build_app(name, checks, routes=parts.routes),
            host=settings.http.host,
            port=settings.http.port_for(name),
        )
        await http.start()
        log.info("%s ready: http://%s:%d/health", name, settings.http.host, http.port)
        failed = asyncio.create_task(runtime.wait())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({failed, stopped, *background}, return_when=asyncio.FIRST_COMPLETED)
        for task in (failed, stopped):
            task.cancel()
        if runtime.failure is not None:
            log.critical("%s: the consumer failed (%s); exiting so the supervisor restarts it", name, runtime.failure)
            exit_code = 1
        for task in background:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.critical("%s: background task failed: %s", name, task.exception())
                exit_code = 1
        log.info("%s stopping", name)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        if runtime is not None:
            await runtime.stop()
        if http is not None:
            await http.stop()
        for close in reversed(closers):
            try:
                await close()
            except Exception as exc:  # keep closing the rest
                log.warning("%s: error while closing: %s", name, exc)
    log.info("%s stopped", name)
    return exit_code


async def _remember_organization(_ctx: HandlerContext, event: OrganizationUpserted) -> Recorded:
    """Every service keeps each organization's settings (time zone, update mode, gap policy)."""

    async def persist(conn: Any) -> None:
        await upsert_organization(conn, event.payload, version=event.entity_version, now=datetime.now(UTC))

    return Recorded(persist=persist)


def platform_topics(settings: Settings) -> list[Any]:
    from qbsync.settings import SERVICE_NAMES

    return all_topic_specs(
        SERVICE_NAMES,
        tiers=len(settings.runtime.retry_delays_seconds),
        partitions=settings.topics.partitions,
        retry_partitions=settings.topics.retry_partitions,
    )


def serve(definition: ServiceDefinition, argv: Sequence[str] | None = None) -> None:
    """Console entry point: ``<service>`` runs it; ``<service> migrate`` only runs its database migrations."""
    args = list(sys.argv[1:] if argv is None else argv)
    settings = Settings()
    if args == ["migrate"]:
        raise SystemExit(asyncio.run(migrate_only(definition, settings)))
    if args:
        raise SystemExit(f"usage: {definition.name} [migrate]")
    raise SystemExit(asyncio.run(run_service(definition, settings)))


async def migrate_only(definition: ServiceDefinition, settings: Settings) -> int:
    configure_logging(definition.name, level=settings.logging.level, fmt=settings.logging.format)
    db = await Database.open(definition.name, settings.database)
    try:
        await upgrade(db, definition.migration_branches, version_locations=definition.migration_locations)
    finally:
        await db.close()
    log.info("%s: database at head", definition.name)
    return 0


def _register_secrets(settings: Settings) -> None:
    register_secret(settings.kafka.sasl_password.get_secret_value() if settings.kafka.sasl_password else None)
    if settings.database.url is not None:
        url = settings.database.url.get_secret_value()
        with contextlib.suppress(Exception):
            from sqlalchemy.engine import make_url

            register_secret(make_url(url).password)


def _database_check(db: Database) -> HealthCheck:
    async def check() -> tuple[bool, Any]:
        await db.ping()
        return True, "sqlite" if db.is_sqlite else f"postgresql schema {db.schema}"

    return check


def _consumer_check(runtime: ConsumerRuntime) -> HealthCheck:
    async def check() -> tuple[bool, Any]:
        ok = runtime.running and runtime.failure is None
        return ok, {"running": runtime.running, "assigned_partitions": len(runtime.assigned), "group": runtime.group}

    return check
