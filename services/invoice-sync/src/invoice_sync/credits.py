"""Credit memos: ``CreditMemoCreated`` -> a QuickBooks CreditMemo, applied to the invoice it corrects.

The credit memo is written exactly once like an invoice (its number is its ``DocNumber``). When it corrects an
invoice, the credit is applied the way QuickBooks allows: a zero-amount Payment with two lines, the invoice and the
credit memo, for what is still open on the invoice (at most the credit). What the invoice cannot take stays on the
credit memo as the customer's credit (refundable). The credit memo waits for its invoice to reach QuickBooks.

Steps are recorded as they happen: the credit memo's QuickBooks id right after the create, the application after
it, so a retry resumes where the earlier attempt stopped. An application already made is recognised by the credit
memo's ``RemainingCredit`` (only this service applies credits it created).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from invoice_sync import metrics, outcomes, store
from invoice_sync.deps import Deps
from invoice_sync.writer import Conflict, Written, write_once, writing
from qbsync.contracts.batchly import CreditMemoCreated, CreditMemoPayload
from qbsync.contracts.outbound import SyncWarning
from qbsync.domain.invoices import (
    DocumentRefs,
    credit_memo_body,
    decimal_of,
    is_same_document,
    validate_credit_memo,
    verify_document,
)
from qbsync.domain.payments import credit_application_amount, credit_application_body
from qbsync.persistence.database import Database
from qbsync.qbo import QboQuery, request_id
from qbsync.runtime import Completed, DependencyNotReady, HandlerContext, PermanentError

__all__ = ["CreditMemoSync"]

_KIND = "credit_memo"


class CreditMemoSync:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def on_credit_memo(self, ctx: HandlerContext, event: CreditMemoCreated) -> Completed:
        memo = event.payload
        org = event.organization_id
        document = await self._remember(ctx.db, org, memo, event.entity_version)
        if document.synced:
            return outcomes.already_synced(document, event.event_id)
        refs = await self._prepare(ctx.db, org, memo)
        invoice = await self._invoice(ctx.db, org, memo)
        claiming = writing(ctx.db, document, event_id=event.event_id, lease=self.deps.lease, wait=self.deps.claim_wait)
        async with claiming as claim:
            if claim.document.synced:
                return outcomes.already_synced(claim.document, event.event_id)
            row, action = await self._credit_memo(
                ctx.db, claim.document, memo, refs, event.event_id, uncertain=claim.uncertain
            )
            mismatches = verify_document(
                row,
                doc_number=memo.credit_memo_number,
                total=memo.total,
                tax_total=memo.tax_total,
                customer_id=refs.customer_id,
                lines=memo.lines,
                item_ids=refs.item_ids,
            )
            warnings = []
            for mismatch in mismatches:
                metrics.MISMATCHES.labels(mismatch.kind).inc()
                warnings.append(SyncWarning(code=f"mismatch_{mismatch.kind}", message=mismatch.message))
            extra: dict[str, Any] = {}
            if invoice is not None and invoice.qbo_id:
                extra = await self._apply(org, memo, row, invoice.qbo_id, refs.customer_id, event.event_id)
            qbo_id = str(row["Id"])
            async with ctx.db.transaction() as conn:
                await store.mark_synced(
                    conn,
                    org,
                    _KIND,
                    memo.credit_memo_id,
                    qbo_entity="CreditMemo",
                    qbo_id=qbo_id,
                    qbo_doc_number=memo.credit_memo_number,
                    action=action,
                    warnings=[w.model_dump() for w in warnings],
                    needs_review=bool(mismatches),
                    event_id=event.event_id,
                    now=datetime.now(UTC),
                    extra=extra,
                )
        return Completed(
            action=action,
            qbo_id=qbo_id,
            qbo_doc_number=memo.credit_memo_number,
            warnings=warnings,
            needs_review=bool(mismatches),
        )

    async def _remember(self, db: Database, org: UUID, memo: CreditMemoPayload, version: int) -> store.Document:
        async with db.transaction() as conn:
            await store.remember_document(
                conn,
                organization_id=org,
                kind=_KIND,
                document_id=memo.credit_memo_id,
                payload=memo.model_dump(mode="json"),
                entity_version=version,
                now=datetime.now(UTC),
                number=memo.credit_memo_number,
                customer_id=memo.customer_id,
            )
            document = await store.get_document(conn, org, _KIND, memo.credit_memo_id)
        assert document is not None, "just remembered"
        return document

    async def _prepare(self, db: Database, org: UUID, memo: CreditMemoPayload) -> DocumentRefs:
        references = self.deps.references
        try:
            problems = validate_credit_memo(memo, today=datetime.now(UTC).date())
            if problems:
                raise PermanentError(
                    f"credit memo {memo.credit_memo_number} failed pre-sync validation: "
                    f"{'; '.join(map(str, problems))}",
                    code="validation",
                    field=problems[0].field,
                    hint="Correct the credit memo in Batchly, then retry.",
                )
            await references.require_document_numbers(org, currency=memo.currency)
            item_ids = await references.item_ids(db, org, memo.lines)
        except PermanentError as exc:
            async with db.transaction() as conn:
                await store.mark_failed(conn, org, _KIND, memo.credit_memo_id, error=exc.message, now=datetime.now(UTC))
            raise
        customer_id = await references.customer_id(db, org, memo.customer_id)
        return DocumentRefs(customer_id, item_ids)

    async def _invoice(self, db: Database, org: UUID, memo: CreditMemoPayload) -> store.Document | None:
        """The corrected invoice, which must be in QuickBooks first (the credit is applied to it)."""
        if memo.invoice_id is None:
            return None
        async with db.connect() as conn:
            invoice = await store.get_document(conn, org, "invoice", memo.invoice_id)
        if invoice is None or not invoice.synced:
            raise DependencyNotReady(
                f"the invoice credit memo {memo.credit_memo_number} corrects is not in QuickBooks yet",
                code="invoice_not_synced",
                hint="Sync the invoice (Retry Sync), then retry the credit memo.",
            )
        return invoice

    async def _credit_memo(
        self,
        db: Database,
        document: store.Document,
        memo: CreditMemoPayload,
        refs: DocumentRefs,
        event_id: UUID,
        *,
        uncertain: bool,
    ) -> tuple[dict[str, Any], Literal["created", "linked"]]:
        org = document.organization_id
        company = self.deps.qbo.company(org)
        if document.qbo_id:  # created by an earlier attempt that stopped before applying the credit
            action: Literal["created", "linked"] = "linked" if document.action == "linked" else "created"
            return await company.read("CreditMemo", document.qbo_id), action

        async def find() -> list[dict[str, Any]]:
            query = QboQuery.select("CreditMemo").where("DocNumber", "=", memo.credit_memo_number)
            return [r for r in (await company.query(query)).rows if r.get("DocNumber") == memo.credit_memo_number]

        async def create(body: dict[str, Any], rid: str) -> dict[str, Any]:
            return await company.create("CreditMemo", body, request_id=rid)

        outcome = await write_once(
            body=credit_memo_body(memo, refs),
            request_id=request_id(event_id, "creditmemo.create"),
            uncertain=uncertain,
            create=create,
            find=find,
            ours=lambda row: is_same_document(row, customer_id=refs.customer_id, total=memo.total),
        )
        if isinstance(outcome, Conflict):
            message = (
                f'credit memo number "{memo.credit_memo_number}" already exists in QuickBooks (CreditMemo '
                f"{outcome.holder['Id']}, another customer or total)"
            )
            async with db.transaction() as conn:
                await store.mark_failed(conn, org, _KIND, memo.credit_memo_id, error=message, now=datetime.now(UTC))
            raise PermanentError(
                message,
                code="6140",
                field="credit_memo_number",
                hint="Check QuickBooks for credit memos entered by hand; re-issue the credit memo under a new number.",
            )
        written: Written = outcome
        async with db.transaction() as conn:
            await store.save_qbo_id(
                conn,
                org,
                _KIND,
                memo.credit_memo_id,
                qbo_entity="CreditMemo",
                qbo_id=str(written.row["Id"]),
                qbo_doc_number=memo.credit_memo_number,
                action=written.action,
                now=datetime.now(UTC),
            )
        return written.row, written.action

    async def _apply(
        self,
        org: UUID,
        memo: CreditMemoPayload,
        credit: dict[str, Any],
        invoice_qbo_id: str,
        customer_id: str,
        event_id: UUID,
    ) -> dict[str, Any]:
        """Apply the credit to the invoice's open balance (zero-amount Payment); returns what was done."""
        company = self.deps.qbo.company(org)
        remaining = decimal_of(credit.get("RemainingCredit", credit.get("Balance")))
        if remaining < memo.total:
            return {"invoice_qbo_id": invoice_qbo_id, "applied": str(memo.total - remaining), "earlier": True}
        invoice = await company.read("Invoice", invoice_qbo_id)
        amount = credit_application_amount(memo.total, remaining, decimal_of(invoice.get("Balance")))
        if amount <= Decimal(0):
            return {"invoice_qbo_id": invoice_qbo_id, "applied": "0.00"}
        body = credit_application_body(
            customer_id=customer_id,
            invoice_qbo_id=invoice_qbo_id,
            credit_memo_qbo_id=str(credit["Id"]),
            amount=amount,
            txn_date=memo.credit_date.isoformat(),
            note=f"Applies credit memo {memo.credit_memo_number} to invoice {invoice.get('DocNumber')} (qbsync)",
        )
        payment = await company.create("Payment", body, request_id=request_id(event_id, "creditmemo.apply"))
        return {"invoice_qbo_id": invoice_qbo_id, "applied": str(amount), "application_payment_id": str(payment["Id"])}
