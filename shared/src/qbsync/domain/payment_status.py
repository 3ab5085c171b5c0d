"""Invoice payment status, QuickBooks -> Batchly: the seed's "Payment Status Logic" table. Pure functions.

QuickBooks invoices have no status field (facts §5); the status is derived from what QuickBooks does keep:

============  ===============================================================================================
Batchly       QuickBooks
============  ===============================================================================================
cancelled     voided (``TotalAmt`` 0, ``Balance`` 0, ``PrivateNote`` "Voided") or deleted
paid          ``Balance`` 0 and ``TotalAmt`` > 0
partial       0 < ``Balance`` < ``TotalAmt`` (past due or not: the seed's Overdue is "unpaid + past due")
overdue       nothing paid (``Balance`` = ``TotalAmt`` > 0) and ``DueDate`` before today in the organization's
              time zone
sent          otherwise: synced, nothing paid, not past due (also a zero-total invoice: nothing is owed)
============  ===============================================================================================

"Draft" (not synced yet) is Batchly's own state and never comes from here. Amount paid is ``TotalAmt - Balance``
(payments, applied credits and deposits alike); the payment date and method are those of the latest payment
still applied to the invoice. A refund in QuickBooks changes an invoice only through its payment: a voided or
deleted payment is unapplied (the invoice is open again), a reduced one leaves the invoice partly paid. A refund
receipt is not linked to any invoice in QuickBooks, so it does not change one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

from qbsync.domain.pulls import date_of, fingerprint, money_of, ref_of, updated_at

__all__ = [
    "InvoiceFacts",
    "PaymentFacts",
    "PaymentStatus",
    "Status",
    "applied_amount",
    "derive_status",
    "facts_from_json",
    "facts_to_json",
    "invoice_facts",
    "is_news",
    "linked_invoice_ids",
    "linked_payment_ids",
    "payment_facts",
]

Status = Literal["sent", "partial", "paid", "overdue", "cancelled"]
_ZERO = Decimal("0.00")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """One payment as far as one invoice is concerned."""

    qbo_id: str
    txn_date: date | None
    method: str | None
    #: How much of this payment is applied to the invoice.
    applied: Decimal
    last_updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    """What QuickBooks says about one invoice and the payments applied to it."""

    qbo_id: str
    doc_number: str | None
    total: Decimal
    balance: Decimal
    due_date: date | None
    voided: bool = False
    deleted: bool = False
    last_updated: datetime | None = None
    payments: tuple[PaymentFacts, ...] = field(default=())

    @property
    def payment_ids(self) -> tuple[str, ...]:
        return tuple(p.qbo_id for p in self.payments)

    @property
    def changed_at(self) -> datetime | None:
        """The newest QuickBooks change behind this status (the invoice's or one of its payments')."""
        stamps = [s for s in (self.last_updated, *(p.last_updated for p in self.payments)) if s is not None]
        return max(stamps) if stamps else None


@dataclass(frozen=True, slots=True)
class PaymentStatus:
    status: Status
    total: Decimal
    amount_paid: Decimal
    amount_due: Decimal
    last_payment_date: date | None
    payment_method: str | None

    def fingerprint(self) -> str:
        return fingerprint(
            {
                "status": self.status,
                "total": self.total,
                "amount_paid": self.amount_paid,
                "amount_due": self.amount_due,
                "last_payment_date": self.last_payment_date,
                "payment_method": self.payment_method,
            }
        )


def derive_status(facts: InvoiceFacts, today: date) -> PaymentStatus:
    """The Batchly status of an invoice (module table); ``today`` is the date in the organization's time zone."""
    if facts.deleted or facts.voided:
        return PaymentStatus("cancelled", _ZERO, _ZERO, _ZERO, None, None)
    total, balance = facts.total, facts.balance
    paid = max(total - balance, _ZERO)
    if total > 0 and balance <= 0:
        status: Status = "paid"
    elif 0 < balance < total:
        status = "partial"
    elif balance > 0 and facts.due_date is not None and facts.due_date < today:
        status = "overdue"
    else:
        status = "sent"
    latest = _latest_payment(facts.payments)
    return PaymentStatus(
        status,
        total,
        paid,
        max(balance, _ZERO),
        latest.txn_date if latest else None,
        latest.method if latest else None,
    )


def _latest_payment(payments: Iterable[PaymentFacts]) -> PaymentFacts | None:
    applied = [p for p in payments if p.applied > 0]
    if not applied:
        return None
    return max(applied, key=lambda p: (p.txn_date or date.min, p.last_updated or _EPOCH, _n(p)))


def _n(payment: PaymentFacts) -> int:
    return int(payment.qbo_id) if payment.qbo_id.isdigit() else 0


def is_news(status: PaymentStatus, previous_fingerprint: str | None) -> bool:
    """Whether Batchly needs to hear about ``status``.

    Before the first pull Batchly already shows a synced invoice as Sent with nothing paid (seed: "Sent: synced to
    QB, unpaid"), so repeating exactly that is not news; anything else is. Afterwards: any difference from what was
    last published.
    """
    if previous_fingerprint is None:
        return not (status.status == "sent" and status.amount_paid == 0 and status.last_payment_date is None)
    return status.fingerprint() != previous_fingerprint


# ---- reading QuickBooks rows -----------------------------------------------------------------------------------------
def linked_payment_ids(invoice: Mapping[str, Any]) -> list[str]:
    """Payments QuickBooks lists as applied to an invoice (``LinkedTxn`` of type Payment)."""
    return [
        str(link["TxnId"])
        for link in invoice.get("LinkedTxn") or []
        if isinstance(link, Mapping) and link.get("TxnType") == "Payment" and link.get("TxnId") not in (None, "")
    ]


def linked_invoice_ids(payment: Mapping[str, Any]) -> list[str]:
    """Invoices a payment's lines name (also a voided payment's, whose lines stay but carry 0)."""
    ids = [
        str(link["TxnId"])
        for line in payment.get("Line") or []
        if isinstance(line, Mapping)
        for link in line.get("LinkedTxn") or []
        if isinstance(link, Mapping) and link.get("TxnType") == "Invoice" and link.get("TxnId") not in (None, "")
    ]
    return list(dict.fromkeys(ids))


def applied_amount(payment: Mapping[str, Any], invoice_id: str) -> Decimal:
    """How much of ``payment`` its lines apply to invoice ``invoice_id``."""
    total = _ZERO
    for line in payment.get("Line") or []:
        if not isinstance(line, Mapping):
            continue
        links = line.get("LinkedTxn") or []
        if any(
            isinstance(link, Mapping) and link.get("TxnType") == "Invoice" and str(link.get("TxnId")) == invoice_id
            for link in links
        ):
            total += money_of(line.get("Amount"))
    return total


def payment_facts(payment: Mapping[str, Any], invoice_id: str, method_names: Mapping[str, str]) -> PaymentFacts:
    method_id, method_name = ref_of(payment.get("PaymentMethodRef"))
    return PaymentFacts(
        qbo_id=str(payment.get("Id")),
        txn_date=date_of(payment.get("TxnDate")),
        method=method_name or (method_names.get(method_id) if method_id else None) or method_id,
        applied=applied_amount(payment, invoice_id),
        last_updated=updated_at(payment),
    )


def invoice_facts(
    invoice: Mapping[str, Any], payments: Mapping[str, Mapping[str, Any]], method_names: Mapping[str, str]
) -> InvoiceFacts:
    """Facts of an invoice row and the rows of the payments it links (payments missing from ``payments`` are
    skipped: QuickBooks' ``Balance`` already accounts for them, only their date and method are unknown)."""
    qbo_id = str(invoice.get("Id"))
    total, balance = money_of(invoice.get("TotalAmt")), money_of(invoice.get("Balance"))
    note = str(invoice.get("PrivateNote") or "").strip().lower()
    return InvoiceFacts(
        qbo_id=qbo_id,
        doc_number=str(invoice["DocNumber"]) if invoice.get("DocNumber") not in (None, "") else None,
        total=total,
        balance=balance,
        due_date=date_of(invoice.get("DueDate")),
        voided=total == 0 and balance == 0 and note.startswith("voided"),
        last_updated=updated_at(invoice),
        payments=tuple(
            payment_facts(payments[pid], qbo_id, method_names) for pid in linked_payment_ids(invoice) if pid in payments
        ),
    )


# ---- stored form (so a status can be re-derived without asking QuickBooks, e.g. when an invoice turns overdue) -------
def facts_to_json(facts: InvoiceFacts) -> dict[str, Any]:
    return {
        "qbo_id": facts.qbo_id,
        "doc_number": facts.doc_number,
        "total": str(facts.total),
        "balance": str(facts.balance),
        "due_date": facts.due_date.isoformat() if facts.due_date else None,
        "voided": facts.voided,
        "deleted": facts.deleted,
        "last_updated": facts.last_updated.isoformat() if facts.last_updated else None,
        "payments": [
            {
                "qbo_id": p.qbo_id,
                "txn_date": p.txn_date.isoformat() if p.txn_date else None,
                "method": p.method,
                "applied": str(p.applied),
                "last_updated": p.last_updated.isoformat() if p.last_updated else None,
            }
            for p in facts.payments
        ],
    }


def facts_from_json(data: Mapping[str, Any]) -> InvoiceFacts:
    return InvoiceFacts(
        qbo_id=str(data["qbo_id"]),
        doc_number=data.get("doc_number"),
        total=money_of(data.get("total")),
        balance=money_of(data.get("balance")),
        due_date=date_of(data.get("due_date")),
        voided=bool(data.get("voided")),
        deleted=bool(data.get("deleted")),
        last_updated=_time(data.get("last_updated")),
        payments=tuple(
            PaymentFacts(
                qbo_id=str(p["qbo_id"]),
                txn_date=date_of(p.get("txn_date")),
                method=p.get("method"),
                applied=money_of(p.get("applied")),
                last_updated=_time(p.get("last_updated")),
            )
            for p in data.get("payments") or []
        ),
    )


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
