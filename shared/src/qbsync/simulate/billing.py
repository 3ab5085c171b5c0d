"""What happens to an invoice after it is created: void (cancel), credit memos, portal payments and refunds.

Each operation checks the invoice's money first — a void needs an untouched invoice, a payment an open balance, a
refund something paid or credited and not yet refunded — and raises ``NotEligible`` otherwise.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final
from uuid import UUID

from qbsync.contracts.batchly import (
    CreditMemoCreated,
    DocumentLine,
    InvoiceVoided,
    InvoiceVoidedPayload,
    PaymentApplication,
    PaymentRecorded,
    PaymentRecordedPayload,
    RefundIssued,
    RefundIssuedPayload,
)
from qbsync.simulate import documents
from qbsync.simulate.payments import choose_amount, choose_method, processor_reference
from qbsync.simulate.pricing import document_totals
from qbsync.simulate.state import ZERO, CreditMemoState, InvoiceState, NotEligible
from qbsync.simulate.world import WorldCore

__all__ = ["BillingOperations"]

_VOID_REASONS: Final = (
    "Order cancelled by customer", "Duplicate invoice", "Billed to wrong customer", "Entered in error"
)  # fmt: skip
_CREDIT_REASONS: Final = (
    "damaged in transit", "short delivery", "pricing correction", "returned goods", "quality issue"
)  # fmt: skip
_REFUND_REASONS: Final = ("Returned items", "Duplicate charge", "Order cancelled after payment", "Pricing adjustment")


class BillingOperations(WorldCore):
    """Void, credit, payment and refund operations of ``BatchlyWorld``."""

    # ---- after the invoice: void, credit, payment, refund -----------------------------------------------------------
    def void_invoice(self, invoice_id: UUID, *, reason: str | None = None, at: datetime | None = None) -> InvoiceVoided:
        """Cancel an invoice in Batchly; only one without payments or credits can be voided."""
        invoice = self.invoice(invoice_id)
        if not invoice.voidable:
            raise NotEligible("only an invoice that is not voided and has no payments or credits can be voided")
        org = self.organization(invoice.organization_id)
        occurred = self._tick(at)
        invoice.voided = True
        invoice.version += 1
        org.track_invoice(invoice)
        payload = InvoiceVoidedPayload(
            invoice_id=invoice_id,
            invoice_number=invoice.payload.invoice_number,
            voided_at=occurred,
            reason=reason or self.rng.choice(_VOID_REASONS),
        )
        return self._envelope(InvoiceVoided, org, invoice_id, invoice.version, payload, occurred)

    def create_credit_memo(
        self, invoice_id: UUID, *, full: bool | None = None, at: datetime | None = None
    ) -> CreditMemoCreated:
        """A credit memo against an invoice: all its lines (``full``, only before any other credit) or part of them.

        The credit first reduces the invoice's balance; whatever exceeds it is customer credit that can be refunded.
        """
        invoice = self.invoice(invoice_id)
        room = invoice.creditable
        if room <= ZERO:
            raise NotEligible("the invoice is voided or already fully credited")
        if full is None:
            full = invoice.credited == ZERO and self.rng.random() < 0.3
        if full and invoice.credited != ZERO:
            raise NotEligible("a full credit needs an invoice without earlier credits")
        lines = self._credit_lines(invoice, full=full, room=room)
        org = self.organization(invoice.organization_id)
        occurred = self._tick(at)
        memo_id = self.new_id()
        payload = documents.credit_memo_payload(
            credit_memo_id=memo_id,
            number=org.credit_memo_numbers.take(),
            invoice=invoice.payload,
            credit_date=self.local_date(org.organization_id, occurred),
            lines=lines,
            memo=f"Credit for {invoice.payload.invoice_number}: {self.rng.choice(_CREDIT_REASONS)}",
        )
        applied = min(payload.total, max(invoice.balance, ZERO))
        invoice.credited += payload.total
        invoice.credit_applied += applied
        memo = CreditMemoState(memo_id, org.organization_id, payload.customer_id, invoice_id, payload.total, applied)
        self._credit_memos[memo_id] = memo
        org.track_invoice(invoice)
        org.track_credit_memo(memo)
        return self._envelope(CreditMemoCreated, org, memo_id, 1, payload, occurred)

    def record_payment(
        self, invoice_id: UUID, *, amount: Decimal | None = None, at: datetime | None = None
    ) -> PaymentRecorded:
        """A portal payment applied to one invoice: its whole balance or part of it."""
        invoice = self.invoice(invoice_id)
        balance = invoice.balance
        if invoice.voided or balance <= ZERO:
            raise NotEligible("the invoice is voided or has nothing left to pay")
        amount = self._amount(amount, balance)
        org = self.organization(invoice.organization_id)
        occurred = self._tick(at)
        method = choose_method(self.rng)
        payment_id = self.new_id()
        payload = PaymentRecordedPayload(
            payment_id=payment_id,
            customer_id=invoice.payload.customer_id,
            amount=amount,
            payment_date=self.local_date(org.organization_id, occurred),
            method=method,
            reference=processor_reference(self.rng, method),
            applications=[PaymentApplication(invoice_id=invoice_id, amount=amount)],
        )
        invoice.paid += amount
        org.track_invoice(invoice)
        return self._envelope(PaymentRecorded, org, payment_id, 1, payload, occurred)

    def issue_refund(
        self,
        *,
        credit_memo_id: UUID | None = None,
        invoice_id: UUID | None = None,
        amount: Decimal | None = None,
        at: datetime | None = None,
    ) -> RefundIssued:
        """Refund unapplied credit of a credit memo, or money paid on an invoice (exactly one of the two)."""
        if (credit_memo_id is None) == (invoice_id is None):
            raise ValueError("give exactly one of credit_memo_id and invoice_id")
        target: CreditMemoState | InvoiceState
        if credit_memo_id is not None:
            target = self.credit_memo(credit_memo_id)
            customer_id = target.customer_id
        else:
            assert invoice_id is not None
            target = self.invoice(invoice_id)
            customer_id = target.payload.customer_id
        if target.refundable <= ZERO:
            raise NotEligible("nothing is left to refund")
        amount = self._amount(amount, target.refundable)
        org = self.organization(target.organization_id)
        occurred = self._tick(at)
        method = choose_method(self.rng)
        refund_id = self.new_id()
        payload = RefundIssuedPayload(
            refund_id=refund_id,
            customer_id=customer_id,
            amount=amount,
            refund_date=self.local_date(org.organization_id, occurred),
            method=method,
            credit_memo_id=credit_memo_id,
            invoice_id=invoice_id,
            reason=self.rng.choice(_REFUND_REASONS),
            reference=processor_reference(self.rng, method, refund=True),
        )
        target.refunded += amount
        if isinstance(target, CreditMemoState):
            org.track_credit_memo(target)
        else:
            org.track_invoice(target)
        return self._envelope(RefundIssued, org, refund_id, 1, payload, occurred)

    def _credit_lines(self, invoice: InvoiceState, *, full: bool, room: Decimal) -> list[DocumentLine]:
        lines = invoice.payload.lines
        if full:
            return documents.credit_lines(self.rng, lines, full=True)
        for _ in range(20):
            candidate = documents.credit_lines(self.rng, lines, full=False)
            total = document_totals(candidate, invoice.payload.tax_percent).total
            if ZERO < total <= room:
                return candidate
        raise NotEligible(f"no partial credit fits the {room} still creditable on the invoice")

    def _amount(self, amount: Decimal | None, open_amount: Decimal) -> Decimal:
        if amount is None:
            return choose_amount(self.rng, open_amount, full_share=self.config.full_payment_share)
        if not ZERO < amount <= open_amount:
            raise ValueError(f"amount must be > 0 and <= {open_amount}")
        return amount
