"""Money after the invoice, Batchly -> QuickBooks: portal payments, credit applications and refunds. Pure functions.

* A portal payment becomes a QuickBooks ``Payment`` whose lines link the invoices it pays (``LinkedTxn``). Each line
  applies at most what is still open on the invoice in QuickBooks: payments and credit memos travel on different
  topics, so QuickBooks may already have applied a credit that Batchly applied after the payment. Whatever cannot be
  applied stays on the payment as unapplied credit, so the customer's balance ends the same either way.
* A credit memo is applied to the invoice it corrects the way QuickBooks allows: a zero-amount ``Payment`` with two
  lines, the invoice and the credit memo (facts §5, marked UNCERTAIN there; the emulator implements it).
* A refund is a ``RefundReceipt`` (money out of a bank account), one non-taxable line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from qbsync.contracts.batchly import PaymentRecordedPayload, RefundIssuedPayload
from qbsync.domain.customers import ValidationProblem

__all__ = [
    "PAYMENT_REF_MAX",
    "PlannedApplication",
    "credit_application_amount",
    "credit_application_body",
    "method_candidates",
    "payment_body",
    "payment_ref_num",
    "plan_applications",
    "refund_doc_number",
    "refund_receipt_body",
    "validate_payment",
]

#: QuickBooks' PaymentRefNum holds 21 characters.
PAYMENT_REF_MAX: Final = 21
_ZERO: Final = Decimal("0.00")

#: QuickBooks payment method names tried, in order, for each Batchly method (a new company has Cash, Check, Visa,
#: MasterCard, American Express, Discover; many add "Credit Card" or "ACH").
_METHOD_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "credit_card": ("Credit Card", "Visa"),
    "ach": ("ACH", "EFT", "Bank Transfer"),
    "check": ("Check",),
    "cash": ("Cash",),
    "other": (),
}


def method_candidates(method: str) -> tuple[str, ...]:
    return _METHOD_NAMES.get(method, ())


def payment_ref_num(payment: PaymentRecordedPayload) -> str:
    """The processor reference when QuickBooks can hold it, else a short stable id derived from the payment id.

    It is also how an uncertain earlier attempt is found again (``PaymentRefNum`` is queryable), so it must be a pure
    function of the event's payload.
    """
    reference = (payment.reference or "").strip()
    if reference and len(reference) <= PAYMENT_REF_MAX:
        return reference
    return f"BP-{payment.payment_id.hex[:16]}"


def refund_doc_number(refund_id: UUID) -> str:
    """A refund has no Batchly number; this stable DocNumber (19 characters) lets a retry find it again."""
    return f"RF-{refund_id.hex[:16]}"


def validate_payment(payment: PaymentRecordedPayload) -> list[ValidationProblem]:
    problems: list[ValidationProblem] = []
    applied = sum((a.amount for a in payment.applications), _ZERO)
    if applied > payment.amount:
        problems.append(ValidationProblem("applications", f"apply {applied} but the payment is only {payment.amount}"))
    invoices = [a.invoice_id for a in payment.applications]
    if len(set(invoices)) != len(invoices):
        problems.append(ValidationProblem("applications", "name the same invoice twice"))
    return problems


@dataclass(frozen=True, slots=True)
class PlannedApplication:
    invoice_qbo_id: str
    requested: Decimal
    amount: Decimal

    @property
    def short(self) -> Decimal:
        return self.requested - self.amount


def plan_applications(requests: Sequence[tuple[str, Decimal, Decimal]]) -> list[PlannedApplication]:
    """``(invoice QBO id, amount Batchly applied, open balance in QuickBooks)`` -> what to apply (never more than
    is open, never negative)."""
    return [
        PlannedApplication(qbo_id, requested, max(_ZERO, min(requested, open_balance)))
        for qbo_id, requested, open_balance in requests
    ]


def payment_body(
    payment: PaymentRecordedPayload,
    *,
    customer_id: str,
    applications: Sequence[PlannedApplication],
    method_id: str | None,
    note: str,
) -> dict[str, Any]:
    lines = [
        {"Amount": a.amount, "LinkedTxn": [{"TxnId": a.invoice_qbo_id, "TxnType": "Invoice"}]}
        for a in applications
        if a.amount > 0
    ]
    body: dict[str, Any] = {
        "CustomerRef": {"value": customer_id},
        "TotalAmt": payment.amount,
        "TxnDate": payment.payment_date.isoformat(),
        "PaymentRefNum": payment_ref_num(payment),
        "PrivateNote": note,
        "Line": lines,
    }
    if method_id:
        body["PaymentMethodRef"] = {"value": method_id}
    return body


def credit_application_amount(credit_total: Decimal, remaining_credit: Decimal, invoice_balance: Decimal) -> Decimal:
    """How much of a credit memo to apply to its invoice: what is left of the credit, at most the open balance."""
    return max(_ZERO, min(credit_total, remaining_credit, invoice_balance))


def credit_application_body(
    *, customer_id: str, invoice_qbo_id: str, credit_memo_qbo_id: str, amount: Decimal, txn_date: str, note: str
) -> dict[str, Any]:
    """The zero-amount Payment that applies a credit memo to an invoice (two lines, net zero)."""
    return {
        "CustomerRef": {"value": customer_id},
        "TotalAmt": _ZERO,
        "TxnDate": txn_date,
        "PrivateNote": note,
        "Line": [
            {"Amount": amount, "LinkedTxn": [{"TxnId": invoice_qbo_id, "TxnType": "Invoice"}]},
            {"Amount": amount, "LinkedTxn": [{"TxnId": credit_memo_qbo_id, "TxnType": "CreditMemo"}]},
        ],
    }


def refund_receipt_body(
    refund: RefundIssuedPayload,
    *,
    customer_id: str,
    item_id: str,
    account_id: str,
    method_id: str | None,
    description: str,
    note: str,
) -> dict[str, Any]:
    """One non-taxable line for the refunded amount, tax pinned to 0 so automated sales tax adds nothing."""
    body: dict[str, Any] = {
        "DocNumber": refund_doc_number(refund.refund_id),
        "CustomerRef": {"value": customer_id},
        "TxnDate": refund.refund_date.isoformat(),
        "DepositToAccountRef": {"value": account_id},
        "PrivateNote": note,
        "Line": [
            {
                "LineNum": 1,
                "Amount": refund.amount,
                "Description": description,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": item_id},
                    "Qty": 1,
                    "UnitPrice": refund.amount,
                    "TaxCodeRef": {"value": "NON"},
                },
            }
        ],
        "TxnTaxDetail": {"TotalTax": _ZERO},
    }
    if method_id:
        body["PaymentMethodRef"] = {"value": method_id}
    return body
