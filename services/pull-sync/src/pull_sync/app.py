"""Composition root of pull-sync: settings -> resources -> handlers (the shell is qbsync.service)."""

from __future__ import annotations

from qbsync.contracts.batchly import (
    ItemCreated,
    SyncItemsRequested,
    SyncPaymentsRequested,
    SyncTaxRequested,
)
from qbsync.contracts.outbound import PullRequested, WebhookReceived
from qbsync.runtime import HandlerContext, Ignored
from qbsync.service import ServiceContext, ServiceDefinition, ServiceParts

__all__ = ["definition"]


async def build(ctx: ServiceContext) -> ServiceParts:

    # Until #7 lands this service records every event it owns as "ignored" with a reason, through the real
    # runtime path (ledger, idempotency, results), so nothing is silently dropped and Batchly shows "not synced".
    not_yet = Ignored(reason="pull-sync does not sync this event type yet (issue #7)", code="not_implemented")

    async def pending(_ctx: HandlerContext, _event: object) -> Ignored:
        return not_yet

    for event_type in (
        ItemCreated,
        SyncItemsRequested,
        SyncPaymentsRequested,
        SyncTaxRequested,
        PullRequested,
        WebhookReceived,
    ):
        ctx.registry.register(event_type, pending)

    return ServiceParts()


definition = ServiceDefinition(name="pull-sync", build=build, track_connections=True)
