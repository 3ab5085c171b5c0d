"""Money after the invoice: portal payments (``PaymentRecorded``) and refunds (``RefundIssued``) -> QuickBooks.

* A payment becomes a QuickBooks Payment linked to the invoices it pays (``LinkedTxn``), each line at most what is
  open on the invoice in QuickBooks (see :mod:`qbsync.domain.payments` for why); the invoices must be in QuickBooks
  first. Found again after an uncertain attempt by its ``PaymentRefNum`` and customer.
* A refund becomes a RefundReceipt paid from a bank account: of a paid invoice, or of a credit memo's unapplied
  credit. QuickBooks' API (and the emulator) cannot apply a credit memo to a refund receipt, so a credit-memo refund
  is flagged for review: the accountant closes the credit in QuickBooks (documented in docs/invoice-sync.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from invoice_sync import metrics, outcomes, store
from invoice_sync.deps import Deps
from invoice_sync.writer import Conflict, Written, write_once, writing
from qbsync.contracts.batchly import PaymentRecorded, RefundIssued
from qbsync.contracts.outbound import SyncWarning
from qbsync.domain.invoices import decimal_of, is_same_document, sales_lines
from qbsync.domain.payments import (
    payment_body,
    payment_ref_num,
    plan_applications,
    refund_doc_number,
    refund_receipt_body,
    validate_payment,
)
from qbsync.persistence.database import Database
from qbsync.qbo import QboCompany, QboQuery, request_id
from qbsync.runtime import Completed, DependencyNotReady, HandlerContext, PermanentError

__all__ = ["PaymentSync"]

Row = dict[str, Any]


class PaymentSync:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    # ---- portal payments -------------------------------------------------------------------------------------------
    async def on_payment(self, ctx: HandlerContext, event: PaymentRecorded) -> Completed:
        payment = event.payload
        org = event.organization_id
        document = await _remember(ctx.db, org, "payment", payment.payment_id, event, None, payment.customer_id)
        if document.synced:
            return outcomes.already_synced(document, event.event_id)
        problems = validate_payment(payment)
        if problems:
            raise PermanentError(
                f"payment failed pre-sync validation: {'; '.join(map(str, problems))}",
                code="validation",
                field=problems[0].field,
                hint="Correct the payment's applications in Batchly, then retry.",
            )
        customer_id = await self.deps.references.customer_id(ctx.db, org, payment.customer_id)
        invoices = await _synced_invoices(ctx.db, org, [a.invoice_id for a in payment.applications])
        company = self.deps.qbo.company(org)
        ref_num = payment_ref_num(payment)
        warnings: list[SyncWarning] = []

        async def create(_body: Row, rid: str) -> Row:
            opened = [await company.read("Invoice", invoices[a.invoice_id]) for a in payment.applications]
            plan = plan_applications(
                [
                    (str(invoice["Id"]), a.amount, decimal_of(invoice.get("Balance")))
                    for a, invoice in zip(payment.applications, opened, strict=True)
                ]
            )
            warnings.extend(
                SyncWarning(
                    code="payment_partly_unapplied",
                    message=f"{planned.short} of the {planned.requested} paid on QuickBooks invoice "
                    f"{planned.invoice_qbo_id} exceeds its open balance there (a credit was applied first); "
                    "it stays on the payment as unapplied credit",
                )
                for planned in plan
                if planned.short > 0
            )
            method_id = await self.deps.references.payment_method_id(org, payment.method)
            note = f"Batchly portal payment {payment.payment_id}" + (
                f"; processor reference {payment.reference}" if payment.reference else ""
            )
            body = payment_body(payment, customer_id=customer_id, applications=plan, method_id=method_id, note=note)
            return await company.create("Payment", body, request_id=rid)

        async def find() -> list[Row]:
            query = (
                QboQuery.select("Payment").where("PaymentRefNum", "=", ref_num).where("CustomerRef", "=", customer_id)
            )
            return (await company.query(query)).rows

        claiming = writing(ctx.db, document, event_id=event.event_id, lease=self.deps.lease, wait=self.deps.claim_wait)
        async with claiming as claim:
            if claim.document.synced:
                return outcomes.already_synced(claim.document, event.event_id)
            outcome = await write_once(
                body={},
                request_id=request_id(event.event_id, "payment.create"),
                uncertain=claim.uncertain,
                create=create,
                find=find,
                ours=lambda row: decimal_of(row.get("TotalAmt")) == payment.amount,
            )
            if isinstance(outcome, Conflict):  # the same reference on another amount: another payment, not a clash
                outcome = Written(await create({}, request_id(event.event_id, "payment.create")), "created")
            row = outcome.row
            if decimal_of(row.get("TotalAmt")) != payment.amount:
                metrics.MISMATCHES.labels("total").inc()
                warnings.append(
                    SyncWarning(
                        code="mismatch_total",
                        message=f"QuickBooks payment total {row.get('TotalAmt')} is not {payment.amount}",
                    )
                )
            return await _finish(ctx.db, document, event.event_id, "Payment", row, outcome.action, warnings, None)

    # ---- refunds ---------------------------------------------------------------------------------------------------
    async def on_refund(self, ctx: HandlerContext, event: RefundIssued) -> Completed:
        refund = event.payload
        org = event.organization_id
        number = refund_doc_number(refund.refund_id)
        document = await _remember(ctx.db, org, "refund", refund.refund_id, event, number, refund.customer_id)
        if document.synced:
            return outcomes.already_synced(document, event.event_id)
        if (refund.invoice_id is None) == (refund.credit_memo_id is None):
            raise PermanentError(
                "a refund names exactly one of invoice_id and credit_memo_id",
                code="validation",
                field="invoice_id",
                hint="Fix the refund in Batchly, then retry.",
            )
        source_kind, source_id = (
            ("invoice", refund.invoice_id) if refund.invoice_id is not None else ("credit_memo", refund.credit_memo_id)
        )
        assert source_id is not None
        customer_id = await self.deps.references.customer_id(ctx.db, org, refund.customer_id)
        async with ctx.db.connect() as conn:
            source = await store.get_document(conn, org, source_kind, source_id)
        if source is None or not source.synced or not source.qbo_id:
            raise DependencyNotReady(
                f"the {source_kind.replace('_', ' ')} this refund is for is not in QuickBooks yet",
                code=f"{source_kind}_not_synced",
            )
        await self.deps.references.require_document_numbers(org, currency=refund.currency)
        company = self.deps.qbo.company(org)
        body = await self._refund_body(company, org, event, customer_id, source)
        claiming = writing(ctx.db, document, event_id=event.event_id, lease=self.deps.lease, wait=self.deps.claim_wait)
        async with claiming as claim:
            if claim.document.synced:
                return outcomes.already_synced(claim.document, event.event_id)
            outcome = await write_once(
                body=body,
                request_id=request_id(event.event_id, "refund.create"),
                uncertain=claim.uncertain,
                create=_creator(company, "RefundReceipt"),
                find=_by_doc_number(company, "RefundReceipt", number),
                ours=lambda row: is_same_document(row, customer_id=customer_id, total=refund.amount),
            )
            if isinstance(outcome, Conflict):
                raise PermanentError(
                    f"refund number {number} is held in QuickBooks by RefundReceipt {outcome.holder['Id']}",
                    code="6140",
                    hint="Remove or renumber that refund receipt in QuickBooks, then retry.",
                )
            return await self._finish_refund(ctx.db, document, event, outcome, source, number)

    async def _finish_refund(
        self,
        db: Database,
        document: store.Document,
        event: RefundIssued,
        outcome: Written,
        source: store.Document,
        number: str,
    ) -> Completed:
        refund = event.payload
        warnings: list[SyncWarning] = []
        row = outcome.row
        if decimal_of(row.get("TotalAmt")) != refund.amount:
            metrics.MISMATCHES.labels("total").inc()
            warnings.append(
                SyncWarning(
                    code="mismatch_total",
                    message=f"QuickBooks refund total {row.get('TotalAmt')} is not {refund.amount}",
                )
            )
        if source.kind == "credit_memo":
            warnings.append(
                SyncWarning(
                    code="credit_not_closed",
                    message=f"refund receipt {number} pays out credit memo {source.qbo_doc_number}'s credit; "
                    "QuickBooks' API cannot apply a credit memo to a refund receipt, so the accountant closes the "
                    "remaining credit in QuickBooks",
                )
            )
        return await _finish(db, document, event.event_id, "RefundReceipt", row, outcome.action, warnings, number)

    async def _refund_body(
        self, company: QboCompany, org: UUID, event: RefundIssued, customer_id: str, source: store.Document
    ) -> Row:
        refund = event.payload
        references = self.deps.references
        account_id = await references.refund_account_id(org)
        if account_id is None:
            raise PermanentError(
                "no bank account to pay the refund from in QuickBooks",
                code="refund_account_missing",
                hint="Add a bank account in QuickBooks (or configure QBSYNC_INVOICE_SYNC__REFUND_ACCOUNT_NAME), "
                "then retry.",
            )
        item_id = await references.refund_item_id(org)
        entity = "Invoice" if source.kind == "invoice" else "CreditMemo"
        if item_id is None:
            refunded = await company.read(entity, str(source.qbo_id))
            item_id = _largest_line_item(refunded)
        if item_id is None:
            raise PermanentError(
                f"the refunded {entity} has no item line to book the refund on",
                code="refund_item_missing",
                hint="Configure QBSYNC_INVOICE_SYNC__REFUND_ITEM_NAME with an item for refunds, then retry.",
            )
        method_id = await references.payment_method_id(org, refund.method)
        what = f"{'invoice' if source.kind == 'invoice' else 'credit memo'} {source.qbo_doc_number or source.number}"
        description = f"Refund of {what}" + (f": {refund.reason}" if refund.reason else "")
        note = f"Batchly refund {refund.refund_id}" + (
            f"; processor reference {refund.reference}" if refund.reference else ""
        )
        return refund_receipt_body(
            refund,
            customer_id=customer_id,
            item_id=item_id,
            account_id=account_id,
            method_id=method_id,
            description=description[:4000],
            note=note,
        )


# ---- shared steps ----------------------------------------------------------------------------------------------------
async def _remember(
    db: Database,
    org: UUID,
    kind: str,
    document_id: UUID,
    event: PaymentRecorded | RefundIssued,
    number: str | None,
    customer_id: UUID,
) -> store.Document:
    async with db.transaction() as conn:
        await store.remember_document(
            conn,
            organization_id=org,
            kind=kind,
            document_id=document_id,
            payload=event.payload.model_dump(mode="json"),
            entity_version=event.entity_version,
            now=datetime.now(UTC),
            number=number,
            customer_id=customer_id,
        )
        document = await store.get_document(conn, org, kind, document_id)
    assert document is not None, "just remembered"
    return document


async def _synced_invoices(db: Database, org: UUID, invoice_ids: list[UUID]) -> dict[UUID, str]:
    found: dict[UUID, str] = {}
    async with db.connect() as conn:
        for invoice_id in invoice_ids:
            document = await store.get_document(conn, org, "invoice", invoice_id)
            if document is None or not document.synced or not document.qbo_id:
                raise DependencyNotReady(
                    f"invoice {invoice_id} the payment applies to is not in QuickBooks yet", code="invoice_not_synced"
                )
            found[invoice_id] = document.qbo_id
    return found


async def _finish(
    db: Database,
    document: store.Document,
    event_id: UUID,
    entity: str,
    row: Row,
    action: str,
    warnings: list[SyncWarning],
    doc_number: str | None,
) -> Completed:
    qbo_id = str(row["Id"])
    needs_review = any(w.code != "payment_partly_unapplied" for w in warnings)
    async with db.transaction() as conn:
        await store.mark_synced(
            conn,
            document.organization_id,
            document.kind,
            document.document_id,
            qbo_entity=entity,
            qbo_id=qbo_id,
            qbo_doc_number=doc_number,
            action=action,
            warnings=[w.model_dump() for w in warnings],
            needs_review=needs_review,
            event_id=event_id,
            now=datetime.now(UTC),
        )
    return Completed(
        action="linked" if action == "linked" else "created",
        qbo_id=qbo_id,
        qbo_doc_number=doc_number,
        warnings=warnings,
        needs_review=needs_review,
    )


def _creator(company: QboCompany, entity: str) -> Callable[[Row, str], Awaitable[Row]]:
    async def create(body: Row, rid: str) -> Row:
        return await company.create(entity, body, request_id=rid)

    return create


def _by_doc_number(company: QboCompany, entity: str, number: str) -> Callable[[], Awaitable[list[Row]]]:
    async def find() -> list[Row]:
        rows = (await company.query(QboQuery.select(entity).where("DocNumber", "=", number))).rows
        return [row for row in rows if row.get("DocNumber") == number]

    return find


def _largest_line_item(row: Row) -> str | None:
    """The item of the document's largest line (where most of what is refunded was booked)."""
    best: tuple[Any, str] | None = None
    for line in sales_lines(row):
        detail = line.get("SalesItemLineDetail")
        if not isinstance(detail, dict) or not isinstance(detail.get("ItemRef"), dict):
            continue
        candidate = (decimal_of(line.get("Amount")), str(detail["ItemRef"]["value"]))
        if best is None or candidate[0] > best[0]:
            best = candidate
    return None if best is None else best[1]
