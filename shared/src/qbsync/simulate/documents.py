"""Lines and payloads of sales orders, invoices and credit memos.

A sales order's ``total`` is its merchandise total before tax (tax is decided when the order is invoiced); an
invoice's and a credit memo's totals follow ``qbsync.simulate.pricing``. A credit memo prices its lines exactly as
the invoice it corrects (same unit prices, same tax rate), so a full credit mirrors the invoice to the cent.
"""

from __future__ import annotations

import functools
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Final

from pydantic import ValidationError

from qbsync.contracts.batchly import (
    CreditMemoPayload,
    DocumentLine,
    InvoicePayload,
    OrderLine,
    SalesOrderPayload,
)
from qbsync.simulate.catalog import CatalogItem
from qbsync.simulate.pricing import document_totals, line_amount, per_line_tax, round_half_up, tax_on

__all__ = [
    "TERMS",
    "Pick",
    "TaxChoice",
    "check_catalog",
    "credit_lines",
    "credit_memo_payload",
    "document_lines",
    "draw_quantity",
    "find_rounding_sensitive",
    "invoice_payload",
    "item_id_for",
    "jitter_quantity",
    "order_payload",
    "random_picks",
    "standing_order",
    "template_picks",
]

#: QuickBooks' standard terms (names as a new company has them) -> days until due.
TERMS: Final[dict[str, int]] = {"Due on receipt": 0, "Net 15": 15, "Net 30": 30}


@dataclass(frozen=True, slots=True)
class Pick:
    """One line to be: which item, its Batchly id in this organization, how many, at what price."""

    item: CatalogItem
    item_id: uuid.UUID
    quantity: Decimal
    unit_price: Decimal


@dataclass(frozen=True, slots=True)
class TaxChoice:
    """The rate applied to a document; ``percent`` None means the customer is exempt."""

    name: str | None
    percent: Decimal | None


@functools.cache
def item_id_for(organization_id: uuid.UUID, sku: str) -> uuid.UUID:
    """Batchly's id of a catalog item in one organization: stable, so every event and the emulator agree on it."""
    return uuid.uuid5(organization_id, f"item:{sku}")


def draw_quantity(rng: random.Random, item: CatalogItem) -> Decimal:
    return item.quantity_step * rng.randint(item.min_units, item.max_units)


def jitter_quantity(rng: random.Random, item: CatalogItem, quantity: Decimal) -> Decimal:
    """The 8:05 "review and adjust quantities" step: a nudge of up to ~20 %, kept within the item's bounds."""
    units = int(quantity / item.quantity_step)
    reach = max(1, units // 5)
    units += rng.randint(-reach, reach)
    return item.quantity_step * min(max(units, item.min_units), item.max_units)


def random_picks(
    rng: random.Random, organization_id: uuid.UUID, items: Sequence[CatalogItem], count: int
) -> list[Pick]:
    """``count`` lines of items drawn with replacement (a 250-line invoice repeats items, as real ones do)."""
    picks = []
    for _ in range(count):
        item = rng.choice(items)
        picks.append(Pick(item, item_id_for(organization_id, item.sku), draw_quantity(rng, item), item.unit_price))
    return picks


def template_picks(rng: random.Random, organization_id: uuid.UUID, items: Sequence[CatalogItem]) -> tuple[Pick, ...]:
    """A customer's standing order: 2-6 distinct items, some at a negotiated price (seed: per-customer pricing)."""
    chosen = rng.sample(list(items), k=min(len(items), rng.randint(2, 6)))
    return tuple(
        Pick(item, item_id_for(organization_id, item.sku), draw_quantity(rng, item), _negotiated(rng, item))
        for item in chosen
    )


def standing_order(
    rng: random.Random, organization_id: uuid.UUID, template: Sequence[Pick], extras: Sequence[CatalogItem]
) -> list[Pick]:
    """Today's order from a template: quantities vary a little, and now and then an extra item is added."""
    picks = [Pick(p.item, p.item_id, jitter_quantity(rng, p.item, p.quantity), p.unit_price) for p in template]
    if extras and rng.random() < 0.2:
        item = rng.choice(extras)
        picks.append(Pick(item, item_id_for(organization_id, item.sku), draw_quantity(rng, item), item.unit_price))
    return picks


def _negotiated(rng: random.Random, item: CatalogItem) -> Decimal:
    if rng.random() >= 0.15:
        return item.unit_price
    discounted = item.unit_price * Decimal(rng.choice(("0.95", "0.925", "0.9")))
    four = round_half_up(discounted, 4)
    two = round_half_up(discounted, 2)
    return two if four == two else four.normalize()


def order_payload(
    order_id: uuid.UUID, number: str, customer_id: uuid.UUID, order_date: date, picks: Sequence[Pick]
) -> SalesOrderPayload:
    lines = [
        _order_line(position, pick.item_id, pick.item.name, pick.quantity, pick.unit_price)
        for position, pick in enumerate(picks, start=1)
    ]
    return SalesOrderPayload(
        order_id=order_id,
        order_number=number,
        customer_id=customer_id,
        order_date=order_date,
        delivery_date=order_date + timedelta(days=1),
        status="draft",
        lines=lines,
        total=sum((line.amount for line in lines), Decimal("0.00")),
    )


def document_lines(picks: Sequence[Pick]) -> list[DocumentLine]:
    return [
        _document_line(position, pick.item_id, pick.item, pick.quantity, pick.unit_price)
        for position, pick in enumerate(picks, start=1)
    ]


def check_catalog(items: Sequence[CatalogItem]) -> None:
    """Prove up front that every line the generator can build from ``items`` is valid, by validating each item's
    extreme lines (smallest step, largest quantity) against the contracts. Generated quantities are multiples of
    the item's step within its bounds, so they have no more places and no more digits than these; that is what lets
    the hot path build lines with ``model_construct``."""
    for item in items:
        for quantity in (item.quantity_step, item.max_quantity):
            line = _document_line(1, uuid.UUID(int=0), item, quantity, item.unit_price)
            try:
                DocumentLine.model_validate(dict(line))
                OrderLine.model_validate(dict(_order_line(1, line.item_id, item.name, quantity, item.unit_price)))
            except ValidationError as exc:
                raise ValueError(f"catalog item {item.sku} cannot make a valid line: {exc}") from None


# Lines are the bulk of a stream (a 250-line invoice has 750 decimals) and pydantic's decimal checks run in Python,
# so lines are constructed without re-validation; ``check_catalog`` has proven their values valid, the enclosing
# payload and envelope are validated, and the tests decode every generated event to hold this to account.
def _document_line(
    position: int, item_id: uuid.UUID, item: CatalogItem, quantity: Decimal, unit_price: Decimal
) -> DocumentLine:
    return DocumentLine.model_construct(
        line_number=position,
        item_id=item_id,
        sku=item.sku,
        description=item.description,
        quantity=quantity,
        unit_price=unit_price,
        amount=line_amount(quantity, unit_price),
        taxable=item.taxable,
    )


def _order_line(
    position: int, item_id: uuid.UUID, description: str, quantity: Decimal, unit_price: Decimal
) -> OrderLine:
    return OrderLine.model_construct(
        line_number=position,
        item_id=item_id,
        description=description,
        quantity=quantity,
        unit_price=unit_price,
        amount=line_amount(quantity, unit_price),
    )


def invoice_payload(
    *,
    invoice_id: uuid.UUID,
    number: str,
    customer_id: uuid.UUID,
    order_id: uuid.UUID | None,
    invoice_date: date,
    terms: str,
    memo: str | None,
    lines: list[DocumentLine],
    tax: TaxChoice,
) -> InvoicePayload:
    totals = document_totals(lines, tax.percent)
    return InvoicePayload(
        invoice_id=invoice_id,
        invoice_number=number,
        customer_id=customer_id,
        order_id=order_id,
        invoice_date=invoice_date,
        due_date=invoice_date + timedelta(days=TERMS[terms]),
        terms=terms,
        memo=memo,
        lines=lines,
        subtotal=totals.subtotal,
        tax_total=totals.tax,
        tax_rate_name=tax.name,
        tax_percent=tax.percent,
        total=totals.total,
    )


def credit_lines(rng: random.Random, lines: Sequence[DocumentLine], *, full: bool) -> list[DocumentLine]:
    """Every line for a full credit; otherwise 1-3 of the invoice's lines, some with a smaller quantity."""
    if full:
        return list(lines)
    chosen = sorted(rng.sample(range(len(lines)), k=rng.randint(1, min(3, len(lines)))))
    credited = []
    for position, index in enumerate(chosen, start=1):
        line = lines[index]
        quantity = _part_of(rng, line.quantity) if rng.random() < 0.5 else line.quantity
        update = {"line_number": position, "quantity": quantity, "amount": line_amount(quantity, line.unit_price)}
        credited.append(DocumentLine.model_construct(**{**dict(line), **update}))
    return credited


def _part_of(rng: random.Random, quantity: Decimal) -> Decimal:
    step = Decimal(1).scaleb(int(quantity.as_tuple().exponent))
    units = int(quantity / step)
    return quantity if units <= 1 else step * rng.randint(1, units - 1)


def credit_memo_payload(
    *,
    credit_memo_id: uuid.UUID,
    number: str,
    invoice: InvoicePayload,
    credit_date: date,
    lines: list[DocumentLine],
    memo: str,
) -> CreditMemoPayload:
    totals = document_totals(lines, invoice.tax_percent)
    return CreditMemoPayload(
        credit_memo_id=credit_memo_id,
        credit_memo_number=number,
        customer_id=invoice.customer_id,
        invoice_id=invoice.invoice_id,
        credit_date=credit_date,
        lines=lines,
        subtotal=totals.subtotal,
        tax_total=totals.tax,
        total=totals.total,
        memo=memo,
    )


def find_rounding_sensitive(draw: Callable[[], list[Pick]], percent: Decimal, *, attempts: int = 1_000) -> list[Pick]:
    """Draw line sets until rounding tax per line and rounding it once on the total differ by at least a cent.

    With two or more taxable lines roughly half of all draws qualify, so the bound is never reached in practice;
    it only turns an impossible request (one taxable line, a 0 % rate) into an error instead of a hang.
    """
    for _ in range(attempts):
        picks = draw()
        taxable = [line_amount(p.quantity, p.unit_price) for p in picks if p.item.taxable]
        if per_line_tax(taxable, percent) != tax_on(sum(taxable, Decimal(0)), percent):
            return picks
    raise ValueError(f"no rounding-sensitive line set found in {attempts} draws (need 2+ taxable lines, rate > 0)")
