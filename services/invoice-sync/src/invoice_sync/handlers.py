"""Event -> use case. Thin: the work is in the use-case modules."""

from __future__ import annotations

from invoice_sync import links
from invoice_sync.bulk import BulkInvoiceSync
from invoice_sync.credits import CreditMemoSync
from invoice_sync.invoices import InvoiceSync
from invoice_sync.payments import PaymentSync
from invoice_sync.voids import VoidSync
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
from qbsync.contracts.outbound import ItemChanged, SyncCompleted
from qbsync.runtime import Completed, Deferred, HandlerContext, HandlerRegistry, Ignored

__all__ = ["UseCases", "register"]


class UseCases:
    """The service's use cases, wired once."""

    def __init__(
        self,
        invoices: InvoiceSync,
        voids: VoidSync,
        credits: CreditMemoSync,
        payments: PaymentSync,
        bulk: BulkInvoiceSync,
    ) -> None:
        self.invoices = invoices
        self.voids = voids
        self.credits = credits
        self.payments = payments
        self.bulk = bulk


def register(registry: HandlerRegistry, cases: UseCases) -> None:
    @registry.on(InvoiceCreated)
    async def invoice_created(ctx: HandlerContext, event: InvoiceCreated) -> Completed:
        return await cases.invoices.on_invoice(ctx, event, batch=True)

    @registry.on(SyncInvoiceRequested)
    async def sync_invoice(ctx: HandlerContext, event: SyncInvoiceRequested) -> Completed:
        """The "Retry Sync" button: push the invoice now (an invoice already in QuickBooks answers unchanged)."""
        return await cases.invoices.on_invoice(ctx, event, batch=False)

    @registry.on(InvoiceUpdated, needs_connection=False)
    async def invoice_updated(_ctx: HandlerContext, _event: InvoiceUpdated) -> Ignored:
        # Seed §3: invoices are immutable in both systems; corrections are a cancel plus a credit memo.
        return Ignored(
            reason="invoices are immutable in QuickBooks: to correct one, cancel it in Batchly and create a credit "
            "memo (both sync)",
            code="immutable",
        )

    @registry.on(InvoiceVoided)
    async def invoice_voided(ctx: HandlerContext, event: InvoiceVoided) -> Completed | Deferred:
        return await cases.voids.on_void(ctx, event)

    @registry.on(CreditMemoCreated)
    async def credit_memo(ctx: HandlerContext, event: CreditMemoCreated) -> Completed:
        return await cases.credits.on_credit_memo(ctx, event)

    @registry.on(PaymentRecorded)
    async def payment(ctx: HandlerContext, event: PaymentRecorded) -> Completed:
        return await cases.payments.on_payment(ctx, event)

    @registry.on(RefundIssued)
    async def refund(ctx: HandlerContext, event: RefundIssued) -> Completed:
        return await cases.payments.on_refund(ctx, event)

    @registry.on(SyncAllUnsentInvoicesRequested)
    async def sync_all(ctx: HandlerContext, event: SyncAllUnsentInvoicesRequested) -> Completed:
        return await cases.bulk.sync_unsent(ctx, event)

    @registry.on(SalesOrderCreated, needs_connection=False)
    async def sales_order(_ctx: HandlerContext, _event: SalesOrderCreated) -> Ignored:
        # Seed §7: sales orders stay in Batchly; only the invoice an order becomes is synced.
        return Ignored(reason="sales orders are never synced to QuickBooks (only invoices are)", code="sales_order")

    registry.register(SyncCompleted, links.on_sync_completed, needs_connection=False)
    registry.register(ItemChanged, links.on_item_changed, needs_connection=False)
