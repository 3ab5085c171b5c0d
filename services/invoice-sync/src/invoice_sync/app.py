"""Composition root of invoice-sync: settings -> resources -> handlers (the shell is qbsync.service)."""

from __future__ import annotations

from qbsync.contracts.batchly import (
    CreditMemoCreated,
    InvoiceCreated,
    InvoiceUpdated,
    InvoiceVoided,
    PaymentRecorded,
    RefundIssued,
    SalesOrderCreated,
    SyncAllUnsentInvoicesRequested,
    SyncInvoiceRequested,
)
from qbsync.runtime import HandlerContext, Ignored
from qbsync.service import ServiceContext, ServiceDefinition, ServiceParts

__all__ = ["definition"]


async def build(ctx: ServiceContext) -> ServiceParts:

    async def sales_order(_ctx: HandlerContext, _event: SalesOrderCreated) -> Ignored:
        # Seed §7: sales orders stay in Batchly; only the invoice an order becomes is synced.
        return Ignored(reason="sales orders are never synced to QuickBooks (only invoices are)", code="sales_order")

    ctx.registry.register(SalesOrderCreated, sales_order, needs_connection=False)

    # Until #6 lands this service records every event it owns as "ignored" with a reason, through the real
    # runtime path (ledger, idempotency, results), so nothing is silently dropped and Batchly shows "not synced".
    not_yet = Ignored(reason="invoice-sync does not sync this event type yet (issue #6)", code="not_implemented")

    async def pending(_ctx: HandlerContext, _event: object) -> Ignored:
        return not_yet

    for event_type in (
        InvoiceCreated,
        InvoiceUpdated,
        InvoiceVoided,
        SyncInvoiceRequested,
        SyncAllUnsentInvoicesRequested,
        CreditMemoCreated,
        PaymentRecorded,
        RefundIssued,
    ):
        ctx.registry.register(event_type, pending)

    return ServiceParts()


definition = ServiceDefinition(name="invoice-sync", build=build, track_connections=True)
