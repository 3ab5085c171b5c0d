"""Invoice domain: each validation rule names its field, the mapping is the seed's table, verification finds every
kind of mismatch, numbering gaps and conflicts are computed right. Pure functions, plain values."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from qbsync.contracts.batchly import (
    CreditMemoPayload,
    DocumentLine,
    InvoicePayload,
    PaymentApplication,
    PaymentRecordedPayload,
    RefundIssuedPayload,
)
from qbsync.domain.invoices import (
    DocumentRefs,
    NumberParts,
    credit_memo_body,
    find_gap,
    invoice_body,
    is_same_document,
    is_voided,
    parse_number,
    round_half_up,
    suggest_next_number,
    validate_credit_memo,
    validate_invoice,
    verify_document,
)
from qbsync.domain.payments import (
    credit_application_amount,
    credit_application_body,
    payment_body,
    payment_ref_num,
    plan_applications,
    refund_doc_number,
    refund_receipt_body,
    validate_payment,
)

TODAY = date(2026, 3, 2)


def _line(number: int, qty: str, price: str, *, amount: str | None = None, taxable: bool = True) -> DocumentLine:
    quantity, unit = Decimal(qty), Decimal(price)
    return DocumentLine(
        line_number=number,
        item_id=uuid.uuid5(uuid.NAMESPACE_OID, f"item{number}"),
        sku=f"SKU-{number}",
        description=f"Item {number}",
        quantity=quantity,
        unit_price=unit,
        amount=Decimal(amount) if amount is not None else round_half_up(quantity * unit),
        taxable=taxable,
    )


def _invoice(lines: list[DocumentLine] | None = None, **fields: Any) -> InvoicePayload:
    lines = lines or [_line(1, "3", "4.75"), _line(2, "2", "0.125", taxable=False)]
    subtotal = sum((line.amount for line in lines), Decimal("0.00"))
    tax = Decimal(fields.pop("tax_total", "1.42"))
    values: dict[str, Any] = {
        "invoice_id": uuid.uuid4(),
        "invoice_number": "INV-000045",
        "customer_id": uuid.uuid4(),
        "invoice_date": TODAY,
        "due_date": TODAY + timedelta(days=30),
        "terms": "Net 30",
        "memo": "Order SO-000012; PO #4411",
        "lines": lines,
        "subtotal": subtotal,
        "tax_total": tax,
        "total": subtotal + tax,
    }
    return InvoicePayload(**(values | fields))


# ---- validation ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"lines": [_line(1, "3", "0.125", amount="0.37")]}, "lines[0].amount", "rounds to 0.38"),
        ({"subtotal": Decimal("1.00")}, "subtotal", "lines add up to"),
        ({"total": Decimal("1.00")}, "total", "subtotal"),
        ({"due_date": TODAY - timedelta(days=1)}, "due_date", "before the invoice date"),
        ({"due_date": TODAY + timedelta(days=4000)}, "due_date", "days out"),
        ({"invoice_date": date(1999, 12, 31), "due_date": date(1999, 12, 31)}, "invoice_date", "plausible"),
        (
            {"invoice_date": TODAY + timedelta(days=400), "due_date": TODAY + timedelta(days=400)},
            "invoice_date",
            "future",
        ),
        ({"invoice_number": "INV-" + "9" * 18}, "invoice_number", "at most 21"),
        ({"invoice_number": " INV-1"}, "invoice_number", "spaces"),
        ({"invoice_number": "   "}, "invoice_number", "empty"),
        ({"invoice_number": "INV\t1"}, "invoice_number", "control"),
        ({"memo": "m" * 1001}, "memo", "1000"),
        ({"lines": [_line(1, "1", "2.00"), _line(1, "1", "3.00")]}, "lines[1].line_number", "twice"),
        ({"lines": [_line(n, "1", "1.00") for n in range(1, 752)]}, "lines", "at most 750"),
    ],
)
def test_each_invoice_rule_fails_with_its_field_named(fields: dict[str, Any], field: str, words: str) -> None:
    fields = dict(fields)
    lines = fields.pop("lines", None)
    problems = validate_invoice(_invoice(lines, **fields), today=TODAY)
    assert problems, fields
    named = [p for p in problems if p.field == field]
    assert named, problems
    assert words in named[0].message


def test_a_valid_invoice_passes_and_due_on_receipt_is_the_same_day() -> None:
    assert validate_invoice(_invoice(), today=TODAY) == []
    assert validate_invoice(_invoice(due_date=TODAY), today=TODAY) == []
    assert validate_invoice(_invoice(invoice_number="X" * 21), today=TODAY) == []
    assert validate_invoice(_invoice(lines=[_line(n, "1", "1.00") for n in range(1, 751)]), today=TODAY) == []


def test_line_amounts_use_half_up_rounding_not_bankers() -> None:
    # 3 x 0.125 = 0.375 -> 0.38 (half-up); Python's default rounding would give 0.38 too, so use 0.125 x 1 -> 0.13
    assert round_half_up(Decimal("0.125")) == Decimal("0.13")
    assert validate_invoice(_invoice([_line(1, "1", "0.125", amount="0.13")], tax_total="0.00"), today=TODAY) == []
    assert validate_invoice(_invoice([_line(1, "1", "0.125", amount="0.12")], tax_total="0.00"), today=TODAY)


def test_credit_memo_rules() -> None:
    lines = [_line(1, "1", "10.00")]
    memo = CreditMemoPayload(
        credit_memo_id=uuid.uuid4(),
        credit_memo_number="CM-000001",
        customer_id=uuid.uuid4(),
        credit_date=TODAY,
        lines=lines,
        subtotal=Decimal("10.00"),
        tax_total=Decimal("0.90"),
        total=Decimal("10.90"),
    )
    assert validate_credit_memo(memo, today=TODAY) == []
    bad = memo.model_copy(update={"total": Decimal("11.00"), "credit_memo_number": "C" * 22})
    fields = {p.field for p in validate_credit_memo(bad, today=TODAY)}
    assert fields == {"total", "credit_memo_number"}


# ---- mapping ---------------------------------------------------------------------------------------------------------
def test_invoice_mapping_is_the_seeds_table_with_lines_in_batchly_order() -> None:
    second, first = _line(2, "2", "0.125", taxable=False), _line(1, "3", "4.75")
    invoice = _invoice([second, first])  # arrives out of order: line_number decides
    body = invoice_body(invoice, DocumentRefs("58", ("7", "9"), "3"))
    assert body == {
        "DocNumber": "INV-000045",
        "CustomerRef": {"value": "58"},
        "TxnDate": "2026-03-02",
        "DueDate": "2026-04-01",
        "Line": [
            {
                "LineNum": 1,
                "Amount": Decimal("14.25"),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": "7"},
                    "Qty": Decimal("3"),
                    "UnitPrice": Decimal("4.75"),
                    "TaxCodeRef": {"value": "TAX"},
                },
                "Description": "Item 1",
            },
            {
                "LineNum": 2,
                "Amount": Decimal("0.25"),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": "9"},
                    "Qty": Decimal("2"),
                    "UnitPrice": Decimal("0.125"),
                    "TaxCodeRef": {"value": "NON"},
                },
                "Description": "Item 2",
            },
        ],
        "TxnTaxDetail": {"TotalTax": Decimal("1.42")},
        "CustomerMemo": {"value": "Order SO-000012; PO #4411"},
        "SalesTermRef": {"value": "3"},
    }


def test_mapping_leaves_out_what_batchly_does_not_have() -> None:
    body = invoice_body(_invoice(memo=None, terms=None), DocumentRefs("58", ("7", "9")))
    assert "CustomerMemo" not in body
    assert "SalesTermRef" not in body
    assert body["TxnTaxDetail"] == {"TotalTax": Decimal("1.42")}, "tax is always pinned, 0 included"


def test_credit_memo_mapping() -> None:
    memo = CreditMemoPayload(
        credit_memo_id=uuid.uuid4(),
        credit_memo_number="CM-000007",
        customer_id=uuid.uuid4(),
        credit_date=TODAY,
        lines=[_line(1, "1", "10.00")],
        subtotal=Decimal("10.00"),
        tax_total=Decimal("0.00"),
        total=Decimal("10.00"),
    )
    body = credit_memo_body(memo, DocumentRefs("5", ("11",)))
    assert body["DocNumber"] == "CM-000007"
    assert body["TxnDate"] == "2026-03-02"
    assert body["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": "11"}
    assert body["TxnTaxDetail"] == {"TotalTax": Decimal("0.00")}


# ---- verification ----------------------------------------------------------------------------------------------------
def _qbo_row(invoice: InvoicePayload, customer: str = "58", items: tuple[str, ...] = ("7", "9")) -> dict[str, Any]:
    lines: list[dict[str, Any]] = [
        {"Amount": line.amount, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": i}}}
        for line, i in zip(sorted(invoice.lines, key=lambda x: x.line_number), items, strict=True)
    ]
    lines.append({"Amount": invoice.subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    return {
        "Id": "130",
        "DocNumber": invoice.invoice_number,
        "CustomerRef": {"value": customer},
        "TotalAmt": invoice.total,
        "TxnTaxDetail": {"TotalTax": invoice.tax_total},
        "Line": lines,
    }


def _verify(invoice: InvoicePayload, row: dict[str, Any]) -> list[str]:
    found = verify_document(
        row,
        doc_number=invoice.invoice_number,
        total=invoice.total,
        tax_total=invoice.tax_total,
        customer_id="58",
        lines=invoice.lines,
        item_ids=("7", "9"),
    )
    return [m.kind for m in found]


def test_verification_passes_when_quickbooks_matches_ignoring_its_subtotal_line() -> None:
    invoice = _invoice()
    assert _verify(invoice, _qbo_row(invoice)) == []


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"Id": None}, "id"),
        ({"DocNumber": "1001"}, "doc_number"),
        ({"TotalAmt": Decimal("15.93")}, "total"),
        ({"TxnTaxDetail": {"TotalTax": Decimal("1.43")}}, "tax"),
        ({"CustomerRef": {"value": "59"}}, "customer"),
    ],
)
def test_verification_names_each_kind_of_mismatch(change: dict[str, Any], kind: str) -> None:
    invoice = _invoice()
    assert kind in _verify(invoice, _qbo_row(invoice) | change)


def test_verification_checks_line_count_and_line_order() -> None:
    invoice = _invoice()
    row = _qbo_row(invoice)
    row["Line"] = row["Line"][1:]
    assert _verify(invoice, row) == ["line_count"]
    swapped = _qbo_row(invoice, items=("9", "7"))
    assert _verify(invoice, swapped) == ["line"]


def test_ours_means_same_customer_and_same_total_and_a_void_is_recognised() -> None:
    row = {"CustomerRef": {"value": "58"}, "TotalAmt": 15.92}
    assert is_same_document(row, customer_id="58", total=Decimal("15.92"))
    assert not is_same_document(row, customer_id="59", total=Decimal("15.92"))
    assert not is_same_document(row, customer_id="58", total=Decimal("15.91"))
    assert is_voided({"TotalAmt": 0, "PrivateNote": "Voided"})
    assert not is_voided({"TotalAmt": 0, "PrivateNote": "free sample"})


# ---- numbering -------------------------------------------------------------------------------------------------------
def test_numbers_split_into_prefix_sequence_and_width() -> None:
    assert parse_number("INV-000045") == NumberParts("INV-", 45, 6)
    assert parse_number("2026/17") == NumberParts("2026/", 17, 2)
    assert parse_number("INV-A") is None
    assert NumberParts("INV-", 45, 6).format(46) == "INV-000046"


def test_a_gap_is_a_missing_predecessor_after_lower_numbers_were_seen() -> None:
    parts = NumberParts("INV-", 7, 6)
    assert find_gap(parts, highest_below=None, predecessor_seen=False) is None, "the first number starts the sequence"
    assert find_gap(parts, highest_below=6, predecessor_seen=True) is None
    gap = find_gap(parts, highest_below=4, predecessor_seen=False)
    assert gap is not None
    assert gap.message == "invoice number INV-000007 follows INV-000004: INV-000005 to INV-000006 has not been seen"
    single = find_gap(parts, highest_below=5, predecessor_seen=False)
    assert single is not None
    assert single.message.endswith("INV-000006 has not been seen")


def test_suggested_counter_reset_is_quickbooks_highest_number_plus_one_at_our_width() -> None:
    existing = ["INV-000045", "INV-000051", "INV-9", "CM-000900", "1001", "INV-ABC"]
    assert suggest_next_number("INV-000045", existing) == "INV-000052"
    assert suggest_next_number("INV-000060", ["INV-000045"]) == "INV-000061"


# ---- payments, credits, refunds --------------------------------------------------------------------------------------
def _payment(**fields: Any) -> PaymentRecordedPayload:
    invoice = uuid.uuid4()
    values: dict[str, Any] = {
        "payment_id": uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
        "customer_id": uuid.uuid4(),
        "amount": Decimal("50.00"),
        "payment_date": TODAY,
        "reference": "ch_3PZ0a1B2c3D4e5F6g7H8i9J0",
        "applications": [PaymentApplication(invoice_id=invoice, amount=Decimal("50.00"))],
    }
    return PaymentRecordedPayload(**(values | fields))


def test_payment_reference_fits_quickbooks_or_becomes_a_stable_short_id() -> None:
    assert payment_ref_num(_payment(reference="py_short")) == "py_short"
    long = _payment()
    assert payment_ref_num(long) == "BP-0f1e2d3c4b5a6978"
    assert payment_ref_num(long) == payment_ref_num(long.model_copy())
    assert len(payment_ref_num(long)) <= 21
    assert refund_doc_number(long.payment_id) == "RF-0f1e2d3c4b5a6978"


def test_payment_validation() -> None:
    assert validate_payment(_payment()) == []
    twice = uuid.uuid4()
    over = _payment(
        applications=[
            PaymentApplication(invoice_id=twice, amount=Decimal("40.00")),
            PaymentApplication(invoice_id=twice, amount=Decimal("20.00")),
        ]
    )
    messages = [p.message for p in validate_payment(over)]
    assert any("only 50.00" in m for m in messages)
    assert any("same invoice twice" in m for m in messages)


def test_applications_never_exceed_what_is_open_and_the_rest_stays_unapplied() -> None:
    plan = plan_applications([("7", Decimal("50.00"), Decimal("50.00")), ("8", Decimal("30.00"), Decimal("12.50"))])
    assert [(p.invoice_qbo_id, p.amount, p.short) for p in plan] == [
        ("7", Decimal("50.00"), Decimal("0.00")),
        ("8", Decimal("12.50"), Decimal("17.50")),
    ]
    body = payment_body(_payment(amount=Decimal("80.00")), customer_id="5", applications=plan, method_id="3", note="n")
    assert body["TotalAmt"] == Decimal("80.00")
    assert body["Line"] == [
        {"Amount": Decimal("50.00"), "LinkedTxn": [{"TxnId": "7", "TxnType": "Invoice"}]},
        {"Amount": Decimal("12.50"), "LinkedTxn": [{"TxnId": "8", "TxnType": "Invoice"}]},
    ]
    assert body["PaymentMethodRef"] == {"value": "3"}


def test_a_credit_is_applied_up_to_the_open_balance_with_a_zero_payment() -> None:
    assert credit_application_amount(Decimal("30.00"), Decimal("30.00"), Decimal("100.00")) == Decimal("30.00")
    assert credit_application_amount(Decimal("30.00"), Decimal("30.00"), Decimal("12.00")) == Decimal("12.00")
    assert credit_application_amount(Decimal("30.00"), Decimal("30.00"), Decimal("0")) == Decimal("0")
    body = credit_application_body(
        customer_id="5",
        invoice_qbo_id="7",
        credit_memo_qbo_id="9",
        amount=Decimal("12.00"),
        txn_date="2026-03-02",
        note="n",
    )
    assert body["TotalAmt"] == Decimal("0.00")
    assert [line["LinkedTxn"][0]["TxnType"] for line in body["Line"]] == ["Invoice", "CreditMemo"]
    assert {line["Amount"] for line in body["Line"]} == {Decimal("12.00")}


def test_refund_receipt_is_one_non_taxable_line_with_tax_pinned_to_zero() -> None:
    refund = RefundIssuedPayload(
        refund_id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        amount=Decimal("19.99"),
        refund_date=TODAY,
        invoice_id=uuid.uuid4(),
    )
    body = refund_receipt_body(
        refund, customer_id="5", item_id="11", account_id="7", method_id=None, description="d", note="n"
    )
    assert body["DocNumber"] == refund_doc_number(refund.refund_id)
    assert body["DepositToAccountRef"] == {"value": "7"}
    assert body["TxnTaxDetail"] == {"TotalTax": Decimal("0.00")}
    (line,) = body["Line"]
    assert line["Amount"] == Decimal("19.99")
    assert line["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "NON"}
    assert "PaymentMethodRef" not in body
