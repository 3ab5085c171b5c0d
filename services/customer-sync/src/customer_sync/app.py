"""Composition root of customer-sync: settings -> QBO client (tokens from token-manager) -> use cases -> handlers."""

from __future__ import annotations

from customer_sync import handlers, store
from customer_sync.sync import CustomerSync
from qbsync.persistence import RUNTIME_BRANCH
from qbsync.qbo import QboClient, TokenProvider
from qbsync.service import ServiceContext, ServiceDefinition, ServiceParts
from qbsync.tokens import TokenManagerClient

__all__ = ["build", "definition"]


async def build(ctx: ServiceContext, token_provider: TokenProvider | None = None) -> ServiceParts:
    tokens = token_provider or TokenManagerClient(ctx.settings.token_manager)
    qbo = QboClient(ctx.settings.qbo, tokens)
    sync = CustomerSync(qbo, ctx.publisher, service=ctx.name, runtime=ctx.settings.runtime)
    handlers.register(ctx.registry, sync)
    closers = [qbo.aclose]
    if isinstance(tokens, TokenManagerClient):
        closers.append(tokens.aclose)
    return ServiceParts(resources=sync, closers=closers)


definition = ServiceDefinition(
    name="customer-sync",
    build=build,
    migration_branches=(RUNTIME_BRANCH, "customer_sync"),
    migration_locations=(store.MIGRATIONS,),
)
