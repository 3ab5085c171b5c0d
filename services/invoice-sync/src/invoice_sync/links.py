"""Dependencies learnt from events, never asked for: customers from customer-sync's results, items from pull-sync.

Both are local bookkeeping (``Recorded``, no sync result, no ledger row) and run while a connection is lost.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from invoice_sync import store
from qbsync.contracts.outbound import ItemChanged, SyncCompleted
from qbsync.runtime import HandlerContext, Recorded

__all__ = ["on_item_changed", "on_sync_completed"]

CUSTOMER_SERVICE = "customer-sync"


async def on_sync_completed(_ctx: HandlerContext, event: SyncCompleted) -> Recorded:
    """customer-sync created, updated or linked a customer: its QuickBooks id is what our invoices refer to."""
    payload = event.payload
    if payload.service != CUSTOMER_SERVICE or payload.entity_type != "customer" or not payload.qbo_id:
        return Recorded()
    qbo_id = payload.qbo_id

    async def persist(conn: Any) -> None:
        await store.upsert_customer_link(
            conn,
            organization_id=event.organization_id,
            customer_id=event.entity_id,
            qbo_id=qbo_id,
            event_id=event.event_id,
            occurred_at=event.occurred_at,
            now=datetime.now(UTC),
        )

    return Recorded(persist=persist)


async def on_item_changed(_ctx: HandlerContext, event: ItemChanged) -> Recorded:
    """A QuickBooks item changed: remember it by Batchly item (when matched) and by SKU."""
    item = event.payload
    active = item.active and item.change != "deactivated"

    async def persist(conn: Any) -> None:
        now = datetime.now(UTC)
        if item.batchly_item_id is not None:
            await store.upsert_item_link(
                conn,
                organization_id=event.organization_id,
                item_id=item.batchly_item_id,
                qbo_item_id=item.qbo_item_id,
                sku=item.sku,
                active=active,
                occurred_at=item.qbo_last_updated,
                now=now,
            )
        if item.sku:
            await store.upsert_item_sku(
                conn,
                organization_id=event.organization_id,
                sku=item.sku,
                qbo_item_id=item.qbo_item_id,
                active=active,
                source="item_changed",
                occurred_at=item.qbo_last_updated,
                now=now,
            )

    return Recorded(persist=persist)
