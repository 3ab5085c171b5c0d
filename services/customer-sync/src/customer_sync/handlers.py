"""Event -> use case. Thin: the work is in :mod:`customer_sync.sync`."""

from __future__ import annotations

from customer_sync.sync import CustomerSync
from qbsync.contracts.batchly import (
    CustomerCreated,
    CustomerPayload,
    CustomerUpdated,
    FlushCustomerUpdatesRequested,
    SyncAllCustomersRequested,
    SyncCustomerRequested,
)
from qbsync.contracts.envelope import Envelope
from qbsync.runtime import Completed, Deferred, HandlerContext, HandlerRegistry, Ignored

__all__ = ["register"]


def register(registry: HandlerRegistry, sync: CustomerSync) -> None:
    @registry.on(CustomerCreated, CustomerUpdated)
    async def snapshot(ctx: HandlerContext, event: Envelope[CustomerPayload]) -> Completed | Ignored | Deferred:
        return await sync.on_snapshot(ctx, event, force=False)

    @registry.on(SyncCustomerRequested)
    async def sync_one(ctx: HandlerContext, event: SyncCustomerRequested) -> Completed | Ignored | Deferred:
        """The "Sync to QB" button: push the current snapshot now, even if this version was pushed before."""
        return await sync.on_snapshot(ctx, event, force=True)

    @registry.on(SyncAllCustomersRequested)
    async def sync_all(ctx: HandlerContext, event: SyncAllCustomersRequested) -> Completed:
        statuses = ("unsynced", "failed", "deferred") if event.payload.only_unsynced else None
        return await sync.bulk(ctx, event, statuses=statuses, force=not event.payload.only_unsynced)

    @registry.on(FlushCustomerUpdatesRequested)
    async def flush(ctx: HandlerContext, event: FlushCustomerUpdatesRequested) -> Completed:
        """The 3 AM job: push the updates held for the nightly batch."""
        return await sync.bulk(ctx, event, statuses=("deferred",), force=False)
