"""Composition root of token-manager: settings -> resources -> handlers (the shell is qbsync.service)."""

from __future__ import annotations

from qbsync.contracts.batchly import OrganizationUpserted
from qbsync.runtime import HandlerContext, Recorded
from qbsync.service import ServiceContext, ServiceDefinition, ServiceParts

__all__ = ["definition"]


async def build(ctx: ServiceContext) -> ServiceParts:
    async def organization(_ctx: HandlerContext, _event: OrganizationUpserted) -> Recorded:
        return Recorded()

    ctx.registry.register(OrganizationUpserted, organization, needs_connection=False)

    return ServiceParts()


definition = ServiceDefinition(name="token-manager", build=build, track_connections=False)
