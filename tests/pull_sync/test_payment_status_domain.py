"""Payment status: the seed's logic table, payment date and method, refunds and voids, news-only publishing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from qbsync.domain.payment_status import (
    InvoiceFacts,
    PaymentFacts,
    derive_status,
    facts_from_json,
    facts_to_json,
    invoice_facts,
    is_news,
    linked_invoice_ids,
)
from qbsync.domain.schedule import local_today

TODAY = date(2026, 3, 15)


def _facts(total: str, balance: str, due: date | None = TODAY, **extra: Any) -> InvoiceFacts:
    return InvoiceFacts("42", "INV-1001", Decimal(total), Decimal(balance), due, **extra)


def _payment(qbo_id: str, applied: str, on: date | None, method: str | None = "Visa") -> PaymentFacts:
    return PaymentFacts(qbo_id, on, method, Decimal(applied), datetime(2026, 3, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("facts", "status", "paid", "due"),
    [
        (_facts("100.00", "0.00"), "paid", "100.00", "0.00"),
        (_facts("100.00", "40.00"), "partial", "60.00", "40.00"),
        (_facts("100.00", "40.00", due=date(2026, 1, 1)), "partial", "60.00", "40.00"),  # "Overdue" = unpaid
        (_facts("100.00", "100.00", due=date(2026, 3, 14)), "overdue", "0.00", "100.00"),
        (_facts("100.00", "100.00", due=TODAY), "sent", "0.00", "100.00"),  # due today is not past due
        (_facts("100.00", "100.00", due=None), "sent", "0.00", "100.00"),
        (_facts("0.00", "0.00"), "sent", "0.00", "0.00"),  # nothing is owed on a zero invoice: not "paid"
        (_facts("0.00", "0.00", voided=True), "cancelled", "0.00", "0.00"),
        (_facts("100.00", "100.00", deleted=True), "cancelled", "0.00", "0.00"),
    ],
)
def test_status_follows_the_seed_logic_table(facts: InvoiceFacts, status: str, paid: str, due: str) -> None:
    derived = derive_status(facts, TODAY)
    assert derived.status == status
    assert derived.amount_paid == Decimal(paid)
    assert derived.amount_due == Decimal(due)


def test_last_payment_date_and_method_come_from_the_latest_payment_still_applied() -> None:
    facts = _facts(
        "300.00",
        "50.00",
        payments=(
            _payment("7", "100.00", date(2026, 3, 2), "Check"),
            _payment("9", "150.00", date(2026, 3, 9), "Visa"),
            _payment("8", "0.00", date(2026, 3, 12), "Cash"),  # a voided payment keeps its lines at 0
        ),
    )
    derived = derive_status(facts, TODAY)
    assert derived.status == "partial"
    assert derived.last_payment_date == date(2026, 3, 9)
    assert derived.payment_method == "Visa"


def test_a_refunded_payment_turns_a_paid_invoice_back_and_that_is_news() -> None:
    paid = derive_status(_facts("80.00", "0.00", payments=(_payment("5", "80.00", date(2026, 3, 3)),)), TODAY)
    assert paid.status == "paid"
    refunded = derive_status(_facts("80.00", "80.00", due=date(2026, 3, 1)), TODAY)  # payment voided in QuickBooks
    assert refunded.status == "overdue"
    assert refunded.last_payment_date is None
    assert is_news(refunded, paid.fingerprint())
    partly = derive_status(_facts("80.00", "30.00", payments=(_payment("5", "50.00", date(2026, 3, 3)),)), TODAY)
    assert partly.status == "partial"
    assert is_news(partly, paid.fingerprint())


def test_only_changes_are_news_and_a_fresh_unpaid_invoice_is_not() -> None:
    sent = derive_status(_facts("10.00", "10.00"), TODAY)
    assert not is_news(sent, None), "Batchly already shows a synced invoice as Sent"
    assert not is_news(sent, sent.fingerprint())
    overdue = derive_status(_facts("10.00", "10.00", due=date(2026, 3, 1)), TODAY)
    assert is_news(overdue, None)
    assert is_news(sent, overdue.fingerprint()), "back to Sent after being told Overdue"


def test_past_due_is_measured_in_the_organizations_time_zone() -> None:
    moment = datetime(2026, 3, 16, 3, 0, tzinfo=UTC)  # 20:00 on the 15th in Los Angeles, noon the 16th in Tokyo
    facts = _facts("10.00", "10.00", due=date(2026, 3, 15))
    assert derive_status(facts, local_today(moment, "America/Los_Angeles")).status == "sent"
    assert derive_status(facts, local_today(moment, "Asia/Tokyo")).status == "overdue"
    assert local_today(moment, "No/Such_Zone") == date(2026, 3, 15), "an unknown zone falls back to the default"


def test_quickbooks_rows_become_facts_with_each_payments_share_of_this_invoice() -> None:
    invoice = {
        "Id": "31",
        "DocNumber": "INV-31",
        "TotalAmt": Decimal("120.50"),
        "Balance": 20,
        "DueDate": "2026-03-31",
        "LinkedTxn": [{"TxnId": "70", "TxnType": "Payment"}, {"TxnId": "99", "TxnType": "Estimate"}],
        "MetaData": {"LastUpdatedTime": "2026-03-10T09:00:00-08:00"},
    }
    payment = {
        "Id": "70",
        "TxnDate": "2026-03-10",
        "PaymentMethodRef": {"value": "3"},
        "Line": [
            {"Amount": Decimal("100.50"), "LinkedTxn": [{"TxnId": "31", "TxnType": "Invoice"}]},
            {"Amount": 40, "LinkedTxn": [{"TxnId": "32", "TxnType": "Invoice"}]},
        ],
        "MetaData": {"LastUpdatedTime": "2026-03-10T09:00:05-08:00"},
    }
    facts = invoice_facts(invoice, {"70": payment}, {"3": "Check"})
    assert facts.payments == (
        PaymentFacts(
            "70", date(2026, 3, 10), "Check", Decimal("100.50"), datetime.fromisoformat("2026-03-10T09:00:05-08:00")
        ),
    )
    assert facts.changed_at == datetime.fromisoformat("2026-03-10T09:00:05-08:00"), "the payment is the newest change"
    assert linked_invoice_ids(payment) == ["31", "32"]
    derived = derive_status(facts, TODAY)
    assert (derived.status, derived.amount_paid, derived.payment_method) == ("partial", Decimal("100.50"), "Check")
    assert facts_from_json(facts_to_json(facts)) == facts


def test_a_voided_invoice_is_recognised_by_quickbooks_void_marker() -> None:
    voided = {"Id": "5", "TotalAmt": 0, "Balance": 0, "PrivateNote": "Voided", "DueDate": "2026-03-01"}
    zero = {"Id": "6", "TotalAmt": 0, "Balance": 0, "PrivateNote": "free sample"}
    assert derive_status(invoice_facts(voided, {}, {}), TODAY).status == "cancelled"
    assert derive_status(invoice_facts(zero, {}, {}), TODAY).status == "sent"
