"""Composition root of token-manager: settings -> keys -> OAuth client -> refresher -> connections -> HTTP API.

The shell (``qbsync.service``) runs it: migrations of the ``runtime`` and ``token_manager`` branches, the consumer
(organizations are remembered by the shell's default handler), the HTTP server with :mod:`token_manager.api`
beside ``/health`` and ``/metrics``, and two background loops — the proactive refresher (with state clean-up and
gauges) and the connection-event outbox. :func:`make_definition` lets tests inject a clock and an OAuth transport.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from qbsync.observability.logging import register_secret
from qbsync.persistence import RUNTIME_BRANCH
from qbsync.service import ServiceContext, ServiceDefinition, ServiceParts
from token_manager import metrics, store
from token_manager.api import TokenApi
from token_manager.clock import Clock, system_clock
from token_manager.company import CompanyNames
from token_manager.config import check_configuration
from token_manager.connections import ConnectionService
from token_manager.crypto import TokenCipher, load_key_ring
from token_manager.events import ConnectionEvents
from token_manager.oauth import IntuitOAuthClient
from token_manager.refresh import Refresher, RefreshPolicy
from token_manager.state import StateSigner

__all__ = ["MIGRATIONS", "TokenManager", "assemble", "definition", "make_definition"]

log = logging.getLogger("token_manager")

#: This service's own Alembic branch (``token_manager``), beside the shared ``runtime`` branch.
MIGRATIONS = Path(__file__).resolve().parent / "migrations" / "versions"
BRANCH = "token_manager"


@dataclass
class TokenManager:
    """The assembled service; the ``resources`` of its ``ServiceParts`` (tests drive it directly)."""

    cipher: TokenCipher
    oauth: IntuitOAuthClient
    refresher: Refresher
    connections: ConnectionService
    events: ConnectionEvents
    api: TokenApi
    companies: CompanyNames
    clock: Clock
    db: Any
    warning: timedelta

    async def update_gauges(self) -> None:
        async with self.db.connect() as conn:
            inputs = await store.gauge_inputs(conn)
        metrics.publish_gauges(inputs, now=self.clock(), warning=self.warning)

    async def maintain(self) -> int:
        """One pass of the background work: proactive refreshes, expired states, gauges. Returns refreshes done."""
        refreshed = await self.refresher.sweep()
        await self.connections.purge_states()
        await self.update_gauges()
        return refreshed

    async def run_maintenance(self, interval_seconds: float) -> None:
        """Background loop; a failed pass is logged and the next one runs on time. Never returns."""
        while True:
            try:
                await self.maintain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database hiccup must not stop proactive refreshing for good
                log.warning("token maintenance pass failed: %s", type(exc).__name__)
            await asyncio.sleep(interval_seconds)

    async def aclose(self) -> None:
        await self.events.aclose()
        await self.oauth.aclose()
        await self.companies.aclose()


async def assemble(
    ctx: ServiceContext,
    *,
    clock: Clock = system_clock,
    oauth_transport: httpx.AsyncBaseTransport | None = None,
) -> TokenManager:
    settings = ctx.settings
    tm = settings.token_manager
    check_configuration(settings)
    ring = load_key_ring(tm, production=settings.environment == "production", data_dir=settings.database.data_dir)
    cipher = TokenCipher(ring)
    for secret in (*cipher.secrets(), tm.service_token.get_secret_value(), tm.client_secret.get_secret_value()):
        register_secret(secret)
    oauth = IntuitOAuthClient.from_settings(settings, clock=clock, transport=oauth_transport)
    events = ConnectionEvents(ctx.db, ctx.publisher, environment=tm.oauth_environment)
    warning = timedelta(days=tm.refresh_token_warning_days)
    gauges: list[Callable[[], Coroutine[Any, Any, None]]] = []

    async def on_change() -> None:
        for update in gauges:
            await update()

    refresher = Refresher(
        db=ctx.db,
        cipher=cipher,
        oauth=oauth,
        events=events,
        clock=clock,
        policy=RefreshPolicy(
            margin=timedelta(seconds=tm.refresh_margin_seconds),
            forced_min_interval=timedelta(seconds=tm.unauthorized_refresh_min_interval_seconds),
            lock_timeout=timedelta(seconds=tm.refresh_lock_timeout_seconds),
        ),
        on_change=on_change,
    )
    # The company read must reach the API of the environment the tokens come from.
    qbo = settings.qbo
    if qbo.base_url is None and qbo.environment != tm.oauth_environment:
        qbo = qbo.model_copy(update={"environment": tm.oauth_environment})
    companies = CompanyNames(qbo)
    connections = ConnectionService(
        db=ctx.db,
        cipher=cipher,
        oauth=oauth,
        signer=StateSigner(
            cipher.derived_keys("oauth-state"), ttl=timedelta(seconds=tm.state_ttl_seconds), clock=clock
        ),
        refresher=refresher,
        events=events,
        companies=companies,
        clock=clock,
        environment=tm.oauth_environment,
        warning=warning,
        on_change=on_change,
    )
    api = TokenApi(
        connections=connections, refresher=refresher, service_token=tm.service_token.get_secret_value(), clock=clock
    )
    service = TokenManager(cipher, oauth, refresher, connections, events, api, companies, clock, ctx.db, warning)
    gauges.append(service.update_gauges)
    rotated = await connections.reencrypt_tokens()
    log.info(
        "token-manager: %d encryption key(s) from %s; %d connection(s) re-encrypted under the current key; OAuth %s",
        cipher.key_count,
        ring.source,
        rotated,
        tm.oauth_environment,
    )
    await service.update_gauges()
    return service


def make_definition(
    *, clock: Clock = system_clock, oauth_transport: httpx.AsyncBaseTransport | None = None
) -> ServiceDefinition:
    async def build(ctx: ServiceContext) -> ServiceParts:
        service = await assemble(ctx, clock=clock, oauth_transport=oauth_transport)
        tm = ctx.settings.token_manager

        async def maintenance() -> None:
            await service.run_maintenance(tm.refresh_check_interval_seconds)

        async def outbox() -> None:
            await service.events.run(tm.outbox_flush_interval_seconds)

        return ServiceParts(
            resources=service,
            routes=service.api.routes(),
            background=[maintenance, outbox],
            closers=[service.aclose],
        )

    return ServiceDefinition(
        name="token-manager",
        build=build,
        track_connections=False,
        migration_branches=(RUNTIME_BRANCH, BRANCH),
        migration_locations=(MIGRATIONS,),
    )


definition = make_definition()
