"""Voids: a Batchly invoice cancelled is voided in QuickBooks (the books keep the number, with a voided invoice).

A void that arrives before its invoice reached QuickBooks is stored as pending and answered ``Deferred``; the
invoice's create applies it right after the invoice exists and then completes the void's own ledger row and result.
A void for an invoice never seen waits in the retry ladder (its ``InvoiceCreated`` will arrive).

Both paths void with a requestid derived from the void event (and the SyncToken voided), so whichever comes second
is a replay, not a second write; voiding an invoice QuickBooks already shows as voided is skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from invoice_sync import outcomes, store
from invoice_sync.deps import Deps
from qbsync.contracts.batchly import InvoiceVoided
from qbsync.contracts.codec import decode_envelope, encode_envelope
from qbsync.domain.invoices import is_voided
from qbsync.persistence.database import Database
from qbsync.qbo import request_id
from qbsync.qbo.errors import QboStaleObjectError
from qbsync.runtime import Completed, Deferred, DependencyNotReady, HandlerContext, TransientError

__all__ = ["VoidSync"]

_STALE_RETRIES = 3


class VoidSync:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def on_void(self, ctx: HandlerContext, event: InvoiceVoided) -> Completed | Deferred:
        org, invoice_id = event.organization_id, event.payload.invoice_id
        number = event.payload.invoice_number
        async with ctx.db.connect() as conn:
            document = await store.get_document(conn, org, "invoice", invoice_id)
        if document is None:
            raise DependencyNotReady(
                f"invoice {number} has not reached invoice-sync yet; the void waits for it", code="invoice_not_seen"
            )
        if document.synced and document.qbo_id:
            return await self._void_now(org, invoice_id, document.qbo_id, event.event_id)
        async with ctx.db.transaction() as conn:
            await store.request_void(
                conn,
                organization_id=org,
                invoice_id=invoice_id,
                event_id=event.event_id,
                event=encode_envelope(event).decode(),
                source=(ctx.topic, ctx.partition, ctx.offset),
                now=datetime.now(UTC),
            )
        # The invoice may have been written while we stored the request: look again (the create looks too).
        async with ctx.db.connect() as conn:
            document = await store.get_document(conn, org, "invoice", invoice_id)
        if document is not None and document.synced and document.qbo_id:
            return await self._void_now(org, invoice_id, document.qbo_id, event.event_id)
        return Deferred(
            reason=f"invoice {number} is not in QuickBooks yet; it is voided right after it is created",
            code="waiting_for_invoice",
        )

    async def _void_now(self, org: UUID, invoice_id: UUID, qbo_id: str, void_event_id: UUID) -> Completed:
        row = await self.void_in_quickbooks(org, qbo_id, void_event_id)

        async def persist(conn: Any) -> None:
            await store.mark_void_done(conn, org, invoice_id, qbo_id=qbo_id, now=datetime.now(UTC))

        return Completed(action="voided", qbo_id=qbo_id, qbo_doc_number=row.get("DocNumber"), persist=persist)

    async def void_in_quickbooks(self, org: UUID, qbo_id: str, void_event_id: UUID) -> dict[str, Any]:
        """Void with the current SyncToken; re-read and retry on a stale one (bounded); already voided -> as is."""
        company = self.deps.qbo.company(org)
        for _ in range(_STALE_RETRIES):
            current = await company.read("Invoice", qbo_id)
            if is_voided(current):
                return current
            token = str(current["SyncToken"])
            try:
                return await company.void(
                    "Invoice", qbo_id, token, request_id=request_id(void_event_id, f"invoice.void:{qbo_id}:{token}")
                )
            except QboStaleObjectError:
                continue
        raise TransientError(f"QuickBooks invoice {qbo_id} kept changing while voiding it (5010)", code="5010")

    async def apply_pending(self, db: Database, org: UUID, invoice_id: UUID, qbo_id: str) -> bool:
        """Right after an invoice reached QuickBooks: apply a void that waited for it. Returns whether one did."""
        async with db.connect() as conn:
            pending = await store.get_pending_void(conn, org, invoice_id)
        return await self.apply_waiting(db, org, invoice_id, qbo_id, pending)

    async def apply_waiting(
        self, db: Database, org: UUID, invoice_id: UUID, qbo_id: str, pending: store.PendingVoid | None
    ) -> bool:
        """:meth:`apply_pending` with the request already read (by the caller, in the transaction that linked it)."""
        if pending is None or pending.status == "done":
            return False
        _, source = decode_envelope(pending.event.encode())
        row = await self.void_in_quickbooks(org, qbo_id, pending.event_id)
        async with db.transaction() as conn:
            await store.mark_void_done(conn, org, invoice_id, qbo_id=qbo_id, now=datetime.now(UTC))
        await outcomes.report_completed(
            db,
            self.deps.publisher,
            source,
            service=self.deps.service,
            max_attempts=self.deps.runtime.max_attempts,
            position=(pending.source_topic, pending.source_partition, pending.source_offset),
            action="voided",
            qbo_id=qbo_id,
            qbo_doc_number=row.get("DocNumber"),
        )
        return True
