"""Sales transactions: Invoice, CreditMemo, RefundReceipt (facts §5 Invoice).

The server owns the arithmetic: line ``Amount`` must equal ``Qty * UnitPrice`` (6070), ``TotalAmt`` is the sum of
the lines less discounts plus tax, ``Balance`` is what payments have not covered, and responses carry the
``SubTotalLineDetail`` line QBO appends. DocNumbers follow the company's custom-transaction-numbers preference and
are unique per transaction type (6140) unless ``include=allowduplicatedocnum`` or the company's check is off.
Voiding keeps the record and its Id but zeroes every amount and notes "Voided".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Final

from qbo_emulator import errors
from qbo_emulator.context import WriteContext
from qbo_emulator.entities import BY_NAME
from qbo_emulator.errors import QboFault
from qbo_emulator.lists import check_lengths
from qbo_emulator.money import ZERO, as_number, dec, round_cents
from qbo_emulator.payments import applied_to, unlink_all
from qbo_emulator.refs import filled_ref, ref_id, resolve_ref
from qbo_emulator.tax import compute_tax

__all__ = ["SALES_READ_ONLY", "build_sales_row", "void_sales_row"]

Row = dict[str, Any]

SALES_READ_ONLY: Final = frozenset(
    {"TotalAmt", "Balance", "HomeBalance", "HomeTotalAmt", "RemainingCredit", "LinkedTxn"}
)
_US_LINE_TAX_CODES: Final = frozenset({"TAX", "NON"})
_USD: Final = {"value": "USD", "name": "United States Dollar"}


def custom_txn_numbers(ctx: WriteContext) -> bool:
    prefs = ctx.company.get("Preferences", "1") or {}
    return bool(prefs.get("SalesFormsPrefs", {}).get("CustomTxnNumbers", True))


def _assign_docnumber(ctx: WriteContext, entity: str, row: Row, old: Row | None) -> None:
    if not custom_txn_numbers(ctx):
        row["DocNumber"] = (old or {}).get("DocNumber") or ctx.company.next_docnumber(entity)
        return
    sent = row.get("DocNumber")
    if sent is None:
        row["DocNumber"] = (old or {}).get("DocNumber") or ctx.company.next_docnumber(entity)
        return
    doc = str(sent)
    row["DocNumber"] = doc
    maximum = ctx.fidelity.docnumber_max_length
    if len(doc) > maximum:
        raise errors.string_length("DocNumber", maximum, len(doc))
    if ctx.allow_duplicate_docnum or not ctx.company.settings.duplicate_docnum_check:
        return
    holders = ctx.company.docnumber_holders(entity, doc) - {(old or {}).get("Id")}
    if holders:
        raise errors.duplicate_docnumber(doc, entity, min(holders, key=int))


def _item_line(ctx: WriteContext, line: Row) -> tuple[Decimal, bool]:
    detail = line.setdefault("SalesItemLineDetail", {})
    if not isinstance(detail, dict):
        raise errors.required_param("Line.SalesItemLineDetail")
    item_ref = detail.get("ItemRef") or {"value": "1"}
    item = resolve_ref(ctx, "Item", item_ref, "Line.SalesItemLineDetail.ItemRef")
    detail["ItemRef"] = filled_ref("Item", item)
    if "IncomeAccountRef" in item:
        detail.setdefault("ItemAccountRef", dict(item["IncomeAccountRef"]))
    qty, price = detail.get("Qty"), detail.get("UnitPrice")
    if "Amount" not in line:
        if qty is None or price is None:
            raise errors.required_param("Line.Amount")
        line["Amount"] = as_number(round_cents(dec(qty) * dec(price)))
    amount = round_cents(dec(line["Amount"]))
    if qty is not None and price is not None and dec(qty) != 0:
        expected = round_cents(dec(qty) * dec(price))
        if expected != amount:
            raise QboFault(
                "6070",
                "Amount calculation incorrect in the request",
                f"Amount is not equal to Qty * UnitPrice. Supplied value:{line['Amount']}",
                "Line.Amount",
            )
    tax_code = ref_id(detail.get("TaxCodeRef")) or ("TAX" if item.get("Taxable") else "NON")
    if tax_code not in _US_LINE_TAX_CODES:
        raise QboFault(
            "6100",
            "Invalid Line TaxCode in the request",
            f"Valid Line TaxCodes for US should be TAX or NON. Supplied value:{tax_code}",
            "Line.SalesItemLineDetail.TaxCodeRef",
        )
    detail["TaxCodeRef"] = {"value": tax_code}
    line["Amount"] = as_number(amount)
    return amount, tax_code == "TAX"


@dataclass
class _Totals:
    """What the lines add up to: subtotal, discounts and the taxable amounts (before discount)."""

    subtotal: Decimal = ZERO
    discount: Decimal = ZERO
    bases: list[Decimal] = field(default_factory=list)


def _apply_line(ctx: WriteContext, line: Row, totals: _Totals) -> None:
    kind = line.get("DetailType") or ("SalesItemLineDetail" if "SalesItemLineDetail" in line else None)
    line["DetailType"] = kind
    if kind == "SalesItemLineDetail":
        amount, taxable = _item_line(ctx, line)
        totals.subtotal += amount
        if taxable:
            totals.bases.append(amount)
    elif kind == "GroupLineDetail":
        totals.subtotal += round_cents(dec(line.get("Amount")))
    elif kind == "DiscountLineDetail":
        totals.discount += _discount(line, totals.subtotal)
    elif kind == "DescriptionOnly":
        line.setdefault("DescriptionLineDetail", {})
    else:
        raise errors.required_param("Line.DetailType")


def _lines(ctx: WriteContext, raw: Any) -> tuple[list[Row], _Totals]:
    """Normalised lines (the client's SubTotal lines dropped; QBO appends its own) and their totals."""
    if not isinstance(raw, list) or not any(isinstance(ln, dict) for ln in raw):
        raise errors.required_param("Line")
    lines: list[Row] = []
    totals = _Totals()
    for source in raw:
        if not isinstance(source, dict) or source.get("DetailType") == "SubTotalLineDetail":
            continue
        line = dict(source)
        _apply_line(ctx, line, totals)
        line["Id"] = str(len(lines) + 1)
        line["LineNum"] = len(lines) + 1
        lines.append(line)
    return lines, totals


def _discount(line: Row, subtotal: Decimal) -> Decimal:
    detail = line.setdefault("DiscountLineDetail", {})
    if detail.get("PercentBased"):
        amount = round_cents(subtotal * dec(detail.get("DiscountPercent")) / 100)
    elif "Amount" in line:
        amount = round_cents(dec(line["Amount"]))
    else:
        raise QboFault(
            "6090",
            "Discount Line missing required info.",
            "Discount amount or percent should be provided.",
            "Line.DiscountLineDetail",
        )
    line["Amount"] = as_number(amount)
    return amount


def _due_date(ctx: WriteContext, row: Row, customer: Row) -> None:
    term_ref = row.get("SalesTermRef") or customer.get("SalesTermRef")
    if term_ref:
        term = resolve_ref(ctx, "Term", term_ref, "SalesTermRef")
        row["SalesTermRef"] = filled_ref("Term", term)
        days = int(term.get("DueDays", 0) or 0)
    else:
        days = 0
    if "DueDate" not in row:
        try:
            row["DueDate"] = (date.fromisoformat(str(row["TxnDate"])) + timedelta(days=days)).isoformat()
        except ValueError as exc:
            raise QboFault("2170", "Invalid Enumeration", f"Invalid date : {row['TxnDate']}", "TxnDate") from exc


def _party_defaults(ctx: WriteContext, entity: str, row: Row, customer: Row) -> None:
    for address in ("BillAddr", "ShipAddr"):
        if address not in row and isinstance(customer.get(address), dict):
            row[address] = dict(customer[address])
    if entity == "Invoice":
        if "BillEmail" not in row and isinstance(customer.get("PrimaryEmailAddr"), dict):
            row["BillEmail"] = dict(customer["PrimaryEmailAddr"])
        _due_date(ctx, row, customer)
    if entity == "RefundReceipt":
        row["DepositToAccountRef"] = filled_ref(
            "Account", resolve_ref(ctx, "Account", row.get("DepositToAccountRef"), "DepositToAccountRef")
        )
    if "PaymentMethodRef" in row:
        method = resolve_ref(ctx, "PaymentMethod", row["PaymentMethodRef"], "PaymentMethodRef")
        row["PaymentMethodRef"] = filled_ref("PaymentMethod", method)


def build_sales_row(ctx: WriteContext, entity: str, fields: Row, old: Row | None) -> Row:
    """The stored form of a sales transaction from the client's fields (``old`` on update)."""
    row = {k: v for k, v in fields.items() if k not in SALES_READ_ONLY}
    customer = resolve_ref(ctx, "Customer", row.get("CustomerRef"), "CustomerRef")
    row["CustomerRef"] = filled_ref("Customer", customer)
    check_lengths(row, BY_NAME[entity].string_limits or {})
    _assign_docnumber(ctx, entity, row, old)
    row.setdefault("TxnDate", ctx.today)
    _party_defaults(ctx, entity, row, customer)
    lines, totals = _lines(ctx, row.get("Line"))
    subtotal, discount, bases = totals.subtotal, totals.discount, totals.bases
    if discount and row.get("ApplyTaxAfterDiscount") and subtotal:
        bases = [round_cents(b * (subtotal - discount) / subtotal) for b in bases]
    tax = compute_tax(ctx, row, customer, bases)
    total = subtotal - discount + tax.total
    lines.append({"Amount": as_number(subtotal), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    row.update(Line=lines, TxnTaxDetail=tax.detail, TotalAmt=as_number(total), CurrencyRef=dict(_USD))
    row.setdefault("ApplyTaxAfterDiscount", False)
    row.setdefault("PrintStatus", "NotSet")
    row.setdefault("EmailStatus", "NotSet")
    row["LinkedTxn"] = list((old or {}).get("LinkedTxn", []))
    _open_amounts(ctx, entity, row, total, old)
    return row


def _open_amounts(ctx: WriteContext, entity: str, row: Row, total: Decimal, old: Row | None) -> None:
    applied = applied_to(ctx, entity, old) if old is not None else ZERO
    if entity == "RefundReceipt":
        row["Balance"] = 0
        return
    deposit = dec(row.get("Deposit")) if entity == "Invoice" else ZERO
    remaining = total - deposit - applied
    if remaining < 0:
        raise errors.validation(
            f"The {entity} total {as_number(total)} is less than the {as_number(applied + deposit)} already "
            "received or applied.",
            "TotalAmt",
        )
    row["Balance"] = as_number(remaining)
    if entity == "CreditMemo":
        row["RemainingCredit"] = as_number(remaining)


def void_sales_row(ctx: WriteContext, entity: str, row: Row) -> Row:
    """Void in place: payments unapplied, every amount zeroed, PrivateNote "Voided", Id and DocNumber kept."""
    unlink_all(ctx, entity, row)
    voided = dict(row)
    lines = []
    for line in row.get("Line", []):
        zeroed = dict(line, Amount=0)
        if isinstance(zeroed.get("SalesItemLineDetail"), dict):
            zeroed["SalesItemLineDetail"] = dict(zeroed["SalesItemLineDetail"], Qty=0)
        lines.append(zeroed)
    voided.update(Line=lines, TotalAmt=0, Balance=0, PrivateNote="Voided", LinkedTxn=[])
    voided["TxnTaxDetail"] = {"TotalTax": 0}
    if entity == "CreditMemo":
        voided["RemainingCredit"] = 0
    return voided
