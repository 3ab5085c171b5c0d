"""Invoices and credit memos, Batchly -> QuickBooks: pre-sync validation, the seed's mapping, post-sync verification,
invoice-number gaps and conflicts. Pure functions: no I/O and no clock (``today`` is passed in).

The mapping is the seed's "Data Mapped" table (§3): invoice number -> ``DocNumber`` exactly, customer ->
``CustomerRef``, dates -> ``TxnDate``/``DueDate``, lines in Batchly's order -> ``Line`` (``LineNum``, description,
qty, rate, amount, item, ``TAX``/``NON``), tax -> ``TxnTaxDetail.TotalTax`` (sent explicitly so automated sales tax
cannot recompute it a cent differently), memo -> ``CustomerMemo``, terms -> ``SalesTermRef``. QuickBooks computes
the subtotal and total itself; verification after the write proves they equal Batchly's to the cent.

Memo -> ``CustomerMemo`` (the "message displayed on invoice"), not ``PrivateNote``: Batchly's memo carries the order
and PO numbers the customer reads on the invoice; ``PrivateNote`` is an internal note and is also where QuickBooks
writes "Voided".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

from qbsync.contracts.batchly import CreditMemoPayload, DocumentLine, InvoicePayload
from qbsync.domain.customers import ValidationProblem

__all__ = [
    "CUSTOMER_MEMO_MAX",
    "DOC_NUMBER_MAX",
    "MAX_LINES",
    "DocumentRefs",
    "Gap",
    "Mismatch",
    "NumberParts",
    "ValidationProblem",
    "credit_memo_body",
    "decimal_of",
    "find_gap",
    "invoice_body",
    "is_same_document",
    "is_voided",
    "line_amount",
    "ordered_lines",
    "parse_number",
    "round_half_up",
    "sales_lines",
    "suggest_next_number",
    "validate_credit_memo",
    "validate_doc_number",
    "validate_invoice",
    "verify_document",
]

#: QuickBooks' DocNumber limit: widely quoted, not in a primary source (facts §5, UNCERTAIN); the emulator uses it.
DOC_NUMBER_MAX: Final = 21
#: Lines per sales transaction QuickBooks accepts (facts §5).
MAX_LINES: Final = 750
CUSTOMER_MEMO_MAX: Final = 1000
LINE_DESCRIPTION_MAX: Final = 4000
#: "Sane dates": nothing before this, nothing more than ``FUTURE_DAYS`` ahead, no due date beyond ``DUE_DAYS_MAX``.
EARLIEST_DATE: Final = date(2000, 1, 1)
FUTURE_DAYS: Final = 366
DUE_DAYS_MAX: Final = 3 * 366

_CENT: Final = Decimal("0.01")
_ZERO: Final = Decimal("0.00")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def round_half_up(value: Decimal, places: int = 2) -> Decimal:
    """Commercial rounding (0.125 -> 0.13), the rule Batchly and QuickBooks' 6070 check both use."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def line_amount(quantity: Decimal, unit_price: Decimal) -> Decimal:
    return round_half_up(quantity * unit_price)


def ordered_lines(lines: Sequence[DocumentLine]) -> list[DocumentLine]:
    """Lines in Batchly's display order (by ``line_number``; position decides a tie)."""
    return sorted(lines, key=lambda line: line.line_number)


# ---- pre-sync validation ---------------------------------------------------------------------------------------------
def validate_doc_number(number: str, field: str, *, maximum: int = DOC_NUMBER_MAX) -> list[ValidationProblem]:
    """A number QuickBooks can hold exactly: not blank, no surrounding spaces (QuickBooks trims), no control
    characters, at most ``maximum`` characters (longer numbers are refused with 2050, never shortened by us)."""
    problems: list[ValidationProblem] = []
    if not number.strip():
        problems.append(ValidationProblem(field, "must not be empty"))
    elif number != number.strip():
        problems.append(ValidationProblem(field, "has leading or trailing spaces, which QuickBooks would drop"))
    if _CONTROL.search(number):
        problems.append(ValidationProblem(field, "must not contain control characters"))
    if len(number) > maximum:
        problems.append(
            ValidationProblem(
                field,
                f"{number!r} is {len(number)} characters; QuickBooks' DocNumber holds at most {maximum}, so it "
                "could not match Batchly's number exactly",
            )
        )
    return problems


def _validate_lines(lines: Sequence[DocumentLine]) -> list[ValidationProblem]:
    problems: list[ValidationProblem] = []
    if len(lines) > MAX_LINES:
        problems.append(ValidationProblem("lines", f"has {len(lines)} lines; QuickBooks accepts at most {MAX_LINES}"))
    seen: set[int] = set()
    for index, line in enumerate(lines):
        field = f"lines[{index}]"
        if line.line_number in seen:
            problems.append(ValidationProblem(f"{field}.line_number", f"{line.line_number} is used twice"))
        seen.add(line.line_number)
        expected = line_amount(line.quantity, line.unit_price)
        if line.amount != expected:
            problems.append(
                ValidationProblem(
                    f"{field}.amount",
                    f"is {line.amount} but quantity {line.quantity} x unit price {line.unit_price} rounds to "
                    f"{expected}",
                )
            )
        if line.description and len(line.description) > LINE_DESCRIPTION_MAX:
            problems.append(ValidationProblem(f"{field}.description", f"is longer than {LINE_DESCRIPTION_MAX}"))
    return problems


def _validate_totals(
    lines: Sequence[DocumentLine], subtotal: Decimal, tax_total: Decimal, total: Decimal
) -> list[ValidationProblem]:
    problems: list[ValidationProblem] = []
    line_sum = sum((line.amount for line in lines), _ZERO)
    if subtotal != line_sum:
        problems.append(ValidationProblem("subtotal", f"is {subtotal} but the lines add up to {line_sum}"))
    if total != subtotal + tax_total:
        problems.append(
            ValidationProblem("total", f"is {total} but subtotal {subtotal} + tax {tax_total} = {subtotal + tax_total}")
        )
    return problems


def _validate_date(value: date, field: str, *, today: date) -> list[ValidationProblem]:
    if value < EARLIEST_DATE:
        return [ValidationProblem(field, f"{value} is before {EARLIEST_DATE}; not a plausible date")]
    if value > today + timedelta(days=FUTURE_DAYS):
        return [ValidationProblem(field, f"{value} is more than {FUTURE_DAYS} days in the future")]
    return []


def validate_invoice(invoice: InvoicePayload, *, today: date) -> list[ValidationProblem]:
    """The seed's pre-sync checks that need no lookup (dates, totals, numbering); each problem names its field.

    Customer and item links are checked when they are resolved (a missing customer is "not ready yet", a missing
    item a clear failure), and the number sequence against what this organization has sent before.
    """
    problems = validate_doc_number(invoice.invoice_number, "invoice_number")
    problems += _validate_lines(invoice.lines)
    problems += _validate_totals(invoice.lines, invoice.subtotal, invoice.tax_total, invoice.total)
    problems += _validate_date(invoice.invoice_date, "invoice_date", today=today)
    if invoice.due_date < invoice.invoice_date:
        problems.append(
            ValidationProblem(
                "due_date",
                f"{invoice.due_date} is before the invoice date {invoice.invoice_date} (use the same day "
                "for due on receipt)",
            )
        )
    elif invoice.due_date > invoice.invoice_date + timedelta(days=DUE_DAYS_MAX):
        problems.append(ValidationProblem("due_date", f"{invoice.due_date} is more than {DUE_DAYS_MAX} days out"))
    if invoice.memo and len(invoice.memo) > CUSTOMER_MEMO_MAX:
        problems.append(ValidationProblem("memo", f"is longer than QuickBooks' {CUSTOMER_MEMO_MAX} characters"))
    return problems


def validate_credit_memo(memo: CreditMemoPayload, *, today: date) -> list[ValidationProblem]:
    problems = validate_doc_number(memo.credit_memo_number, "credit_memo_number")
    problems += _validate_lines(memo.lines)
    problems += _validate_totals(memo.lines, memo.subtotal, memo.tax_total, memo.total)
    problems += _validate_date(memo.credit_date, "credit_date", today=today)
    if memo.total <= 0:
        problems.append(ValidationProblem("total", f"is {memo.total}; a credit memo must credit something"))
    if memo.memo and len(memo.memo) > CUSTOMER_MEMO_MAX:
        problems.append(ValidationProblem("memo", f"is longer than QuickBooks' {CUSTOMER_MEMO_MAX} characters"))
    return problems


# ---- numbering: gaps and conflicts -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NumberParts:
    """``INV-000045`` -> prefix ``INV-``, sequence 45, width 6 (the digits as written)."""

    prefix: str
    sequence: int
    width: int

    def format(self, sequence: int) -> str:
        return f"{self.prefix}{sequence:0{self.width}d}"


def parse_number(number: str) -> NumberParts | None:
    """Split a document number into prefix and numeric suffix; ``None`` when it does not end in digits."""
    match = _NUMBERED.match(number)
    if match is None:
        return None
    digits = match.group(2)
    return NumberParts(match.group(1), int(digits), len(digits))


@dataclass(frozen=True, slots=True)
class Gap:
    number: str
    previous: str
    missing_first: str
    missing_last: str

    @property
    def message(self) -> str:
        missing = (
            self.missing_first
            if self.missing_first == self.missing_last
            else f"{self.missing_first} to {self.missing_last}"
        )
        return f"invoice number {self.number} follows {self.previous}: {missing} has not been seen"


def find_gap(parts: NumberParts, *, highest_below: int | None, predecessor_seen: bool) -> Gap | None:
    """A gap before ``parts``: some lower number of the same prefix was seen but not the one just before it.

    The first number seen for a prefix starts the sequence (nothing before it is known to be missing).
    """
    if predecessor_seen or highest_below is None or highest_below >= parts.sequence - 1:
        return None
    return Gap(
        number=parts.format(parts.sequence),
        previous=parts.format(highest_below),
        missing_first=parts.format(highest_below + 1),
        missing_last=parts.format(parts.sequence - 1),
    )


def suggest_next_number(number: str, existing: Sequence[str]) -> str:
    """Seed error 3: reset the counter to max(QuickBooks number with this prefix) + 1, written at our width."""
    parts = parse_number(number)
    if parts is None:
        return f"{number}-1"
    highest = parts.sequence
    for candidate in existing:
        other = parse_number(candidate)
        if other is not None and other.prefix == parts.prefix:
            highest = max(highest, other.sequence)
    return parts.format(highest + 1)


# ---- mapping ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DocumentRefs:
    """QuickBooks ids a document needs: its customer, each line's item (in ``ordered_lines`` order), the term."""

    customer_id: str
    item_ids: tuple[str, ...]
    term_id: str | None = None


def _line_body(position: int, line: DocumentLine, item_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "LineNum": position,
        "Amount": line.amount,
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {
            "ItemRef": {"value": item_id},
            "Qty": line.quantity,
            "UnitPrice": line.unit_price,
            "TaxCodeRef": {"value": "TAX" if line.taxable else "NON"},
        },
    }
    if line.description:
        body["Description"] = line.description
    return body


def _lines_body(lines: Sequence[DocumentLine], item_ids: Sequence[str]) -> list[dict[str, Any]]:
    ordered = ordered_lines(lines)
    if len(ordered) != len(item_ids):
        raise ValueError("one QuickBooks item id per line is required")
    return [
        _line_body(position, line, item) for position, (line, item) in enumerate(zip(ordered, item_ids, strict=True), 1)
    ]


def invoice_body(invoice: InvoicePayload, refs: DocumentRefs) -> dict[str, Any]:
    """The QuickBooks Invoice for a Batchly invoice (see the module docstring for each field's source)."""
    body: dict[str, Any] = {
        "DocNumber": invoice.invoice_number,
        "CustomerRef": {"value": refs.customer_id},
        "TxnDate": invoice.invoice_date.isoformat(),
        "DueDate": invoice.due_date.isoformat(),
        "Line": _lines_body(invoice.lines, refs.item_ids),
        "TxnTaxDetail": {"TotalTax": invoice.tax_total},
    }
    if invoice.memo:
        body["CustomerMemo"] = {"value": invoice.memo}
    if refs.term_id:
        body["SalesTermRef"] = {"value": refs.term_id}
    return body


def credit_memo_body(memo: CreditMemoPayload, refs: DocumentRefs) -> dict[str, Any]:
    body: dict[str, Any] = {
        "DocNumber": memo.credit_memo_number,
        "CustomerRef": {"value": refs.customer_id},
        "TxnDate": memo.credit_date.isoformat(),
        "Line": _lines_body(memo.lines, refs.item_ids),
        "TxnTaxDetail": {"TotalTax": memo.tax_total},
    }
    if memo.memo:
        body["CustomerMemo"] = {"value": memo.memo}
    return body


# ---- reading QuickBooks' answer --------------------------------------------------------------------------------------
def decimal_of(value: Any) -> Decimal:
    """A QuickBooks amount (int, Decimal, float or numeric string) as a Decimal; absent or garbage -> 0."""
    if value is None or isinstance(value, bool):
        return _ZERO
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return _ZERO


def _ref(row: Mapping[str, Any], key: str) -> str | None:
    ref = row.get(key)
    if isinstance(ref, Mapping) and ref.get("value") not in (None, ""):
        return str(ref["value"])
    return None


def sales_lines(row: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The item lines of a QuickBooks sales transaction (QuickBooks appends a ``SubTotalLineDetail`` line)."""
    lines = row.get("Line")
    if not isinstance(lines, list):
        return []
    return [ln for ln in lines if isinstance(ln, Mapping) and ln.get("DetailType") != "SubTotalLineDetail"]


def is_same_document(row: Mapping[str, Any], *, customer_id: str, total: Decimal) -> bool:
    """Whether a QuickBooks document holding our number is ours: same customer and same total (seed error 3)."""
    return _ref(row, "CustomerRef") == customer_id and decimal_of(row.get("TotalAmt")) == total


def is_voided(row: Mapping[str, Any]) -> bool:
    """QuickBooks has no status field; a void zeroes the amounts and sets PrivateNote "Voided" (facts §5)."""
    return row.get("PrivateNote") == "Voided" and decimal_of(row.get("TotalAmt")) == 0


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A difference between what Batchly holds and what QuickBooks stored (``kind`` is a metric label)."""

    kind: str
    message: str


def verify_document(
    row: Mapping[str, Any],
    *,
    doc_number: str,
    total: Decimal,
    tax_total: Decimal,
    customer_id: str,
    lines: Sequence[DocumentLine],
    item_ids: Sequence[str],
) -> list[Mismatch]:
    """The seed's post-sync verification: id stored, number equal, total to the cent, line count, customer.

    Also the tax total and, line by line in order, amount and item (position matters for reconciliation).
    """
    found: list[Mismatch] = []
    if not row.get("Id"):
        found.append(Mismatch("id", "QuickBooks returned no Id"))
    if row.get("DocNumber") != doc_number:
        found.append(Mismatch("doc_number", f"QuickBooks number {row.get('DocNumber')!r} is not {doc_number!r}"))
    qbo_total = decimal_of(row.get("TotalAmt"))
    if qbo_total != total:
        found.append(Mismatch("total", f"QuickBooks total {qbo_total} differs from Batchly's {total}"))
    detail = row.get("TxnTaxDetail")
    qbo_tax = decimal_of(detail.get("TotalTax")) if isinstance(detail, Mapping) else _ZERO
    if qbo_tax != tax_total:
        found.append(Mismatch("tax", f"QuickBooks tax {qbo_tax} differs from Batchly's {tax_total}"))
    if _ref(row, "CustomerRef") != customer_id:
        found.append(Mismatch("customer", f"QuickBooks customer {_ref(row, 'CustomerRef')} is not {customer_id}"))
    qbo_lines = sales_lines(row)
    if len(qbo_lines) != len(lines):
        found.append(Mismatch("line_count", f"QuickBooks has {len(qbo_lines)} lines, Batchly {len(lines)}"))
        return found
    for position, (ours, theirs, item) in enumerate(zip(ordered_lines(lines), qbo_lines, item_ids, strict=True), 1):
        detail = theirs.get("SalesItemLineDetail")
        item_ref = _ref(detail, "ItemRef") if isinstance(detail, Mapping) else None
        amount = decimal_of(theirs.get("Amount"))
        if amount != ours.amount or item_ref != item:
            found.append(
                Mismatch(
                    "line",
                    f"line {position}: QuickBooks has item {item_ref} for {amount}, Batchly item {item} for "
                    f"{ours.amount}",
                )
            )
            break
    return found
