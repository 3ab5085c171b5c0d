"""Event -> use case. Thin: the work is in :mod:`pull_sync.pulls` and :mod:`pull_sync.push`.

Local bookkeeping (learning which invoices invoice-sync synced) runs even while an organization's QuickBooks
connection is lost; everything that reads QuickBooks parks in that state and resumes on reconnect.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pull_sync import events, store
from pull_sync.feed import Mode
from pull_sync.payments import KIND as PAYMENTS_KIND
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
    async def invoice_synced(ctx: HandlerContext, event: SyncCompleted) -> Recorded:
        """invoice-sync put an invoice into QuickBooks: its payment status is ours to follow from now on.

        Results and "Sync Payments Now" arrive on different topics: a payment run can read the links before this
        result is consumed, pass the invoice by and move its watermark on. The next run reads such an invoice (it
        was never read), but that may be hours away — so when a run has already finished since the invoice was
        synced, its payment status is read now (a targeted pull of this one invoice).
        """
        result = event.payload
        if result.service != INVOICE_SYNC or result.entity_type != "invoice" or not result.qbo_id:
            return Recorded()
        qbo_id = result.qbo_id
        async with ctx.db.connect() as conn:
            watermark = await store.get_watermark(conn, event.organization_id, PAYMENTS_KIND)
        late = watermark is not None and watermark.recorded_at >= event.occurred_at
        now = datetime.now(UTC)

        async def persist(conn: AsyncConnection) -> None:
            await store.link_invoice(conn, event.organization_id, event.entity_id, qbo_id, result.qbo_doc_number, now)

        publish = [events.late_link_pull(event.organization_id, qbo_invoice_id=qbo_id, cause=event, occurred_at=now)]
        return Recorded(persist=persist, publish=publish if late else ())

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
