"""Composition root of pull-sync: settings -> QBO client (tokens from token-manager) -> use cases -> handlers,
the webhook route and the scheduler (a background task)."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from pull_sync import handlers, store
from pull_sync.deps import Clock, Deps, system_clock
from pull_sync.pulls import Pulls
from pull_sync.push import ItemPush
from pull_sync.scheduler import Scheduler
from pull_sync.webhooks import WebhookReceiver
from qbsync.persistence import RUNTIME_BRANCH
from qbsync.qbo import QboClient, TokenProvider
from qbsync.service import ServiceContext, ServiceDefinition, ServiceParts
from qbsync.tokens import TokenManagerClient

__all__ = ["build", "definition"]

#: A lease outlives the runtime's handler timeout (after which the holder is cancelled) by this much.
_LEASE_MARGIN = timedelta(seconds=30)


async def build(
    ctx: ServiceContext, token_provider: TokenProvider | None = None, clock: Clock = system_clock
) -> ServiceParts:
    settings = ctx.settings.pull_sync
    tokens = token_provider or TokenManagerClient(ctx.settings.token_manager)
    qbo = QboClient(ctx.settings.qbo, tokens)
    replica = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    deps = Deps(
        qbo=qbo,
        publisher=ctx.publisher,
        db=ctx.db,
        settings=settings,
        clock=clock,
        replica=replica,
        lease_ttl=timedelta(seconds=ctx.settings.runtime.handler_timeout_seconds) + _LEASE_MARGIN,
        lease_wait_seconds=min(30.0, ctx.settings.runtime.handler_timeout_seconds / 4),
    )
    scheduler = Scheduler(ctx.db, ctx.publisher, settings, clock=clock, replica=replica)  # validates the schedule
    handlers.register(ctx.registry, Pulls(deps), ItemPush(deps))
    routes = [WebhookReceiver(ctx.db, ctx.publisher, settings).route()] if settings.webhooks_enabled else []
    closers = [qbo.aclose]
    if isinstance(tokens, TokenManagerClient):
        closers.append(tokens.aclose)
    return ServiceParts(resources=deps, routes=routes, background=[scheduler.run_forever], closers=closers)


definition = ServiceDefinition(
    name="pull-sync",
    build=build,
    migration_branches=(RUNTIME_BRANCH, "pull_sync"),
    migration_locations=(store.MIGRATIONS,),
    direction="pull",
)
