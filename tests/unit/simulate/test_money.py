"""Money adds up: lines -> subtotal -> tax -> total, half-up, to the cent; payments, credits and refunds fit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest

from qbsync.contracts.batchly import (
    CreditMemoCreated,
    DocumentLine,
    InvoiceCreated,
    InvoiceVoided,
    PaymentRecorded,
    RefundIssued,
    SalesOrderCreated,
)
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.simulate import ROUNDING_FALLBACK_TAX, BatchlyWorld, NotEligible, WorldConfig, round_half_up

START = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)
CENT = Decimal("0.01")


def half_up(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def expected_tax(lines: Sequence[DocumentLine], percent: Decimal | None) -> Decimal:
    taxable = sum((line.amount for line in lines if line.taxable), Decimal(0))
    return half_up(taxable * (percent or Decimal(0)) / 100)


def assert_document_adds_up(lines: Sequence[DocumentLine], subtotal: Decimal, tax: Decimal, total: Decimal,
                            percent: Decimal | None) -> None:  # fmt: skip
    assert [line.line_number for line in lines] == list(range(1, len(lines) + 1))
    for line in lines:
        assert line.amount == half_up(line.quantity * line.unit_price)
    assert subtotal == sum((line.amount for line in lines), Decimal(0))
    assert tax == expected_tax(lines, percent)
    assert total == subtotal + tax


@pytest.fixture(scope="module")
def stream() -> list[AnyEnvelope]:
    world = BatchlyWorld(42, start=START)
    return list(world.mixed_stream(3, 15_000))


def test_round_half_up_is_commercial_rounding() -> None:
    assert round_half_up(Decimal("0.125")) == Decimal("0.13")
    assert round_half_up(Decimal("2.675")) == Decimal("2.68")
    assert round_half_up(Decimal("0.124999")) == Decimal("0.12")
    assert round_half_up(Decimal("1.23456"), 4) == Decimal("1.2346")


def test_every_invoice_adds_up_half_up(stream: list[AnyEnvelope]) -> None:
    invoices = [event.payload for event in stream if isinstance(event, InvoiceCreated)]
    assert len(invoices) > 1_000
    for invoice in invoices:
        assert_document_adds_up(invoice.lines, invoice.subtotal, invoice.tax_total, invoice.total, invoice.tax_percent)
        assert invoice.due_date >= invoice.invoice_date


def test_prices_with_three_to_five_decimals_reach_invoices(stream: list[AnyEnvelope]) -> None:
    places = {
        -line.unit_price.as_tuple().exponent
        for event in stream
        if isinstance(event, InvoiceCreated)
        for line in event.payload.lines
    }
    assert {3, 4, 5} <= places


def test_every_order_total_is_its_line_sum(stream: list[AnyEnvelope]) -> None:
    orders = [event.payload for event in stream if isinstance(event, SalesOrderCreated)]
    assert orders
    for order in orders:
        for line in order.lines:
            assert line.amount == half_up(line.quantity * line.unit_price)
        assert order.total == sum((line.amount for line in order.lines), Decimal(0))


def test_credit_memos_add_up_at_the_invoice_rate_and_never_exceed_it(stream: list[AnyEnvelope]) -> None:
    invoices = {event.entity_id: event.payload for event in stream if isinstance(event, InvoiceCreated)}
    credited: dict[object, Decimal] = defaultdict(Decimal)
    memos = [event.payload for event in stream if isinstance(event, CreditMemoCreated)]
    assert memos
    for memo in memos:
        assert memo.invoice_id is not None
        invoice = invoices[memo.invoice_id]
        assert memo.customer_id == invoice.customer_id
        assert_document_adds_up(memo.lines, memo.subtotal, memo.tax_total, memo.total, invoice.tax_percent)
        credited[memo.invoice_id] += memo.total
        assert credited[memo.invoice_id] <= invoice.total


def test_payments_and_refunds_never_exceed_what_is_open(stream: list[AnyEnvelope]) -> None:
    totals: dict[object, Decimal] = {}
    paid: dict[object, Decimal] = defaultdict(Decimal)
    credited: dict[object, Decimal] = defaultdict(Decimal)
    refunded: dict[object, Decimal] = defaultdict(Decimal)
    memo_totals: dict[object, Decimal] = {}
    partial = full = 0
    for event in stream:
        if isinstance(event, InvoiceCreated):
            totals[event.entity_id] = event.payload.total
        elif isinstance(event, CreditMemoCreated):
            credited[event.payload.invoice_id] += event.payload.total
            memo_totals[event.entity_id] = event.payload.total
        elif isinstance(event, PaymentRecorded):
            (application,) = event.payload.applications
            invoice = application.invoice_id
            assert application.amount == event.payload.amount
            open_amount = totals[invoice] - paid[invoice] - credited[invoice]
            assert Decimal(0) < event.payload.amount <= open_amount
            full += event.payload.amount == open_amount
            partial += event.payload.amount < open_amount
            paid[invoice] += event.payload.amount
        elif isinstance(event, RefundIssued):
            target = event.payload.credit_memo_id or event.payload.invoice_id
            assert (event.payload.credit_memo_id is None) != (event.payload.invoice_id is None)
            limit = memo_totals[target] if event.payload.credit_memo_id else paid[target]
            refunded[target] += event.payload.amount
            assert refunded[target] <= limit
    assert full > 0
    assert partial > 0


def test_only_untouched_invoices_are_voided(stream: list[AnyEnvelope]) -> None:
    touched: set[object] = set()
    voided: set[object] = set()
    for event in stream:
        if isinstance(event, InvoiceVoided):
            assert event.entity_id not in touched
            voided.add(event.entity_id)
        elif isinstance(event, PaymentRecorded):
            invoice_ids = {application.invoice_id for application in event.payload.applications}
            assert not invoice_ids & voided
            touched |= invoice_ids
        elif isinstance(event, CreditMemoCreated):
            assert event.payload.invoice_id not in voided
            touched.add(event.payload.invoice_id)
    assert voided


def test_full_credit_mirrors_the_invoice_to_the_cent() -> None:
    world = BatchlyWorld(4, start=START)
    org = world.add_organization().entity_id
    world.create_customer(org)
    invoice = world.create_invoice(org, line_count=6)
    memo = world.create_credit_memo(invoice.entity_id, full=True).payload
    assert memo.lines == invoice.payload.lines
    assert (memo.subtotal, memo.tax_total, memo.total) == (
        invoice.payload.subtotal,
        invoice.payload.tax_total,
        invoice.payload.total,
    )
    with pytest.raises(NotEligible):
        world.create_credit_memo(invoice.entity_id)
    with pytest.raises(NotEligible):
        world.record_payment(invoice.entity_id)


def test_a_250_line_invoice_keeps_its_lines_in_order_and_adds_up() -> None:
    world = BatchlyWorld(9, start=START)
    org = world.add_organization().entity_id
    world.create_customer(org)
    invoice = world.create_invoice(org, line_count=250).payload
    assert len(invoice.lines) == 250
    assert_document_adds_up(invoice.lines, invoice.subtotal, invoice.tax_total, invoice.total, invoice.tax_percent)


@pytest.mark.parametrize("seed", range(12))
def test_rounding_sensitive_invoice_differs_between_per_line_and_total_rounding(seed: int) -> None:
    world = BatchlyWorld(seed, start=START)
    org = world.add_organization().entity_id
    world.create_customer(org)
    invoice = world.create_invoice(org, rounding_sensitive=True).payload
    assert invoice.tax_percent
    per_line = sum((half_up(line.amount * invoice.tax_percent / 100) for line in invoice.lines if line.taxable),
                   Decimal(0))  # fmt: skip
    assert invoice.tax_total == expected_tax(invoice.lines, invoice.tax_percent)
    assert per_line != invoice.tax_total
    assert abs(per_line - invoice.tax_total) >= CENT


def test_rounding_sensitive_invoice_for_an_exempt_customer_uses_the_fallback_rate() -> None:
    world = BatchlyWorld(2, start=START, config=WorldConfig(tax_exempt_share=1.0))
    org = world.add_organization().entity_id
    customer = world.create_customer(org).entity_id
    assert world.create_invoice(org, customer).payload.tax_total == Decimal("0.00")
    sensitive = world.create_invoice(org, customer, rounding_sensitive=True).payload
    assert (sensitive.tax_rate_name, sensitive.tax_percent) == (
        ROUNDING_FALLBACK_TAX.name,
        ROUNDING_FALLBACK_TAX.percent,
    )
    assert sensitive.tax_total > 0


def test_explicit_amounts_are_checked_against_the_balance() -> None:
    world = BatchlyWorld(6, start=START)
    org = world.add_organization().entity_id
    world.create_customer(org)
    invoice = world.create_invoice(org, line_count=2)
    with pytest.raises(ValueError, match="amount"):
        world.record_payment(invoice.entity_id, amount=invoice.payload.total + CENT)
    first = world.record_payment(invoice.entity_id, amount=CENT)
    rest = world.record_payment(invoice.entity_id)
    assert first.payload.amount + rest.payload.amount <= invoice.payload.total
    with pytest.raises(NotEligible):
        world.void_invoice(invoice.entity_id)
