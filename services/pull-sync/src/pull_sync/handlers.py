"""Event -> use case. Thin: the work is in :mod:`pull_sync.pulls` and :mod:`pull_sync.push`.

Local bookkeeping (learning which invoices invoice-sync synced) runs even while an organization's QuickBooks
connection is lost; everything that reads QuickBooks parks in that state and resumes on reconnect.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pull_sync import events, store
from pull_sync.feed import Mode
from pull_sync.pulls import Pulls, outcome
from pull_sync.push import ItemPush
from qbsync.contracts.batchly import (
    ItemCreated,
    PullSyncRequestedPayload,
    SyncItemsRequested,
    SyncPaymentsRequested,
    SyncTaxRequested,
)
from qbsync.contracts.envelope import Envelope
from qbsync.contracts.outbound import PullKind, PullRequested, SyncCompleted, WebhookReceived
from qbsync.runtime import Completed, HandlerContext, HandlerRegistry, Recorded

__all__ = ["INVOICE_SYNC", "register"]

_COMMANDS: dict[str, PullKind] = {
    "SyncItemsRequested": "items",
    "SyncPaymentsRequested": "payments",
    "SyncTaxRequested": "tax",
}

#: The service whose invoice results teach pull-sync which QuickBooks invoice each Batchly invoice is.
INVOICE_SYNC = "invoice-sync"


def register(registry: HandlerRegistry, pulls: Pulls, push: ItemPush) -> None:
    @registry.on(SyncCompleted, needs_connection=False)
    async def invoice_synced(_ctx: HandlerContext, event: SyncCompleted) -> Recorded:
        """invoice-sync put an invoice into QuickBooks: its payment status is ours to follow from now on."""
        result = event.payload
        if result.service != INVOICE_SYNC or result.entity_type != "invoice" or not result.qbo_id:
            return Recorded()
        qbo_id = result.qbo_id

        async def persist(conn: AsyncConnection) -> None:
            await store.link_invoice(
                conn, event.organization_id, event.entity_id, qbo_id, result.qbo_doc_number, datetime.now(UTC)
            )

        return Recorded(persist=persist)

    @registry.on(ItemCreated, needs_connection=False)  # remembered for matching even while disconnected
    async def item_created(ctx: HandlerContext, event: ItemCreated) -> Completed:
        return await push.on_created(ctx, event)

    @registry.on(SyncItemsRequested, SyncPaymentsRequested, SyncTaxRequested)
    async def sync_now(_ctx: HandlerContext, event: Envelope[PullSyncRequestedPayload]) -> Completed:
        """ "Sync Items / Payments / Tax Now": the scheduled pull, now (a full reload when asked for)."""
        mode: Mode = "full" if event.payload.full else "incremental"
        summaries = await pulls.run(event.organization_id, _COMMANDS[event.event_type], mode=mode, cause=event)
        return outcome(summaries, note=f"requested by {event.payload.requested_by}")

    @registry.on(PullRequested)
    async def pull(_ctx: HandlerContext, event: PullRequested) -> Completed:
        request = event.payload
        if request.kind == "customers_flush":  # the 3 AM job belongs to customer-sync: hand it over
            flush = events.customer_flush(event, occurred_at=datetime.now(UTC))
            return Completed(action="applied", publish=[flush])
        if request.scope == "targeted":
            return outcome(await pulls.targeted(event.organization_id, request.targets, cause=event))
        mode: Mode = "full" if request.scope == "full" else "incremental"
        summaries = await pulls.run(event.organization_id, request.kind, mode=mode, cause=event)
        return outcome(summaries, note=f"schedule slot {request.slot}" if request.slot else None)

    @registry.on(WebhookReceived)
    async def webhook(_ctx: HandlerContext, event: WebhookReceived) -> Completed:
        """A verified notification: read just what it names (the daily reconcile catches anything it missed)."""
        return outcome(await pulls.targeted(event.organization_id, event.payload.entities, cause=event))
