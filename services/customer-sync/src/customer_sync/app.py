"""Composition root of customer-sync: settings -> resources -> handlers (the shell is qbsync.service)."""

from __future__ import annotations

from qbsync.contracts.batchly import (
    CustomerCreated,
    CustomerUpdated,
    FlushCustomerUpdatesRequested,
    OrganizationUpserted,
    SyncAllCustomersRequested,
    SyncCustomerRequested,
)
from qbsync.runtime import HandlerContext, Ignored, Recorded
from qbsync.service import ServiceContext, ServiceDefinition, ServiceParts

__all__ = ["definition"]


async def build(ctx: ServiceContext) -> ServiceParts:
    async def organization(_ctx: HandlerContext, _event: OrganizationUpserted) -> Recorded:
        return Recorded()

    ctx.registry.register(OrganizationUpserted, organization, needs_connection=False)

    # Until #5 lands this service records every event it owns as "ignored" with a reason, through the real
    # runtime path (ledger, idempotency, results), so nothing is silently dropped and Batchly shows "not synced".
    not_yet = Ignored(reason="customer-sync does not sync this event type yet (issue #5)", code="not_implemented")

    async def pending(_ctx: HandlerContext, _event: object) -> Ignored:
        return not_yet

    for event_type in (
        CustomerCreated,
        CustomerUpdated,
        SyncCustomerRequested,
        SyncAllCustomersRequested,
        FlushCustomerUpdatesRequested,
    ):
        ctx.registry.register(event_type, pending)

    return ServiceParts()


definition = ServiceDefinition(name="customer-sync", build=build, track_connections=True)
