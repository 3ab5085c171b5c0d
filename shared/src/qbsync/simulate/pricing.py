"""Batchly's arithmetic for document lines and sales tax, written once so generator and tests agree on it.

* a line's amount is ``round_half_up(quantity x unit_price, 2)`` (QuickBooks rejects a line whose Amount is not
  Qty x UnitPrice to the cent: error 6070);
* the subtotal is the sum of line amounts;
* tax is computed once on the sum of taxable amounts and rounded half-up (``tax_on``), not per line: the two can
  differ by a cent, which is exactly the discrepancy qbsync must not introduce (``per_line_tax`` exists so tests can
  build and recognise the rounding-sensitive cases);
* the total is subtotal + tax.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from qbsync.contracts.batchly import DocumentLine

__all__ = ["Totals", "document_totals", "line_amount", "per_line_tax", "round_half_up", "tax_on"]

_ZERO = Decimal("0.00")


def round_half_up(value: Decimal, places: int = 2) -> Decimal:
    """Commercial rounding (0.125 -> 0.13), not Python's default banker's rounding (0.125 -> 0.12)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def line_amount(quantity: Decimal, unit_price: Decimal) -> Decimal:
    return round_half_up(quantity * unit_price)


def tax_on(taxable_total: Decimal, percent: Decimal | None) -> Decimal:
    """Tax on an already-summed taxable amount; ``None`` (exempt) and 0 % give 0.00."""
    if not percent:
        return _ZERO
    return round_half_up(taxable_total * percent.scaleb(-2))


def per_line_tax(taxable_amounts: Iterable[Decimal], percent: Decimal | None) -> Decimal:
    """Tax rounded on every line and then summed (what a naive mapping that puts tax on each line would get)."""
    return sum((tax_on(amount, percent) for amount in taxable_amounts), _ZERO)


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal: Decimal
    taxable: Decimal
    tax: Decimal
    total: Decimal


def document_totals(lines: Sequence[DocumentLine], percent: Decimal | None) -> Totals:
    subtotal = sum((line.amount for line in lines), _ZERO)
    taxable = sum((line.amount for line in lines if line.taxable), _ZERO)
    tax = tax_on(taxable, percent)
    return Totals(subtotal=subtotal, taxable=taxable, tax=tax, total=subtotal + tax)
