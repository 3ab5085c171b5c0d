"""The seed's user workflows and a mixed, causally valid event stream, built from ``BatchlyWorld`` operations.

* ``new_customer``: seed "New Customer Workflow" — a customer calls with a first order: customer created, order
  created, approved and invoiced, all under one correlation id.
* ``daily``: seed "Daily Order & Invoice Workflow" — at 8:00 local time orders are generated from the customers'
  standing orders, 8:05 reviewed (quantities adjusted, a few cancelled), 8:15 approved, and at 8:20 invoices are
  bulk-created with consecutive numbers.
* ``mixed``: any number of events across organizations, drawn by weight from ``MIX_KINDS``. A step whose
  precondition does not hold yet (a payment with no open invoice) falls back to the step that creates it, so the
  stream is causal by construction: a customer precedes its orders and invoices, an invoice precedes its void,
  payments and credit memos, and a refund follows what it refunds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Final
from uuid import UUID

from qbsync.contracts.envelope import AnyEnvelope
from qbsync.simulate.state import NotEligible

if TYPE_CHECKING:
    from qbsync.simulate.generator import BatchlyWorld
    from qbsync.simulate.state import OrganizationState

__all__ = ["DEFAULT_MIX", "MIX_KINDS", "daily", "mixed", "new_customer"]

#: Relative weights of the default stream: mostly invoices and payments, as in a real distributor's day.
DEFAULT_MIX: Final[Mapping[str, float]] = {
    "OrganizationUpserted": 0.2,
    "CustomerCreated": 8,
    "CustomerUpdated": 10,
    "ItemCreated": 0.3,
    "SalesOrderCreated": 8,
    "InvoiceCreated": 30,
    "InvoiceVoided": 1.5,
    "CreditMemoCreated": 3,
    "PaymentRecorded": 24,
    "RefundIssued": 1.5,
}
MIX_KINDS: Final = tuple(DEFAULT_MIX)

# What to do instead when a kind's precondition does not hold; every chain ends in an always-possible step.
_FALLBACK: Final[Mapping[str, str]] = {
    "CustomerUpdated": "CustomerCreated",
    "ItemCreated": "CustomerUpdated",
    "SalesOrderCreated": "CustomerCreated",
    "InvoiceCreated": "CustomerCreated",
    "InvoiceVoided": "InvoiceCreated",
    "CreditMemoCreated": "InvoiceCreated",
    "PaymentRecorded": "InvoiceCreated",
    "RefundIssued": "PaymentRecorded",
}

_INVOICE_MINUTES: Final = 20
_BATCH_WINDOW_MS: Final = 300_000


def new_customer(world: BatchlyWorld, organization_id: UUID, *, at: datetime | None = None) -> list[AnyEnvelope]:
    rng = world.rng
    correlation = world.new_id()
    customer = world.create_customer(organization_id, at=at, correlation_id=correlation)
    order_at = customer.occurred_at + timedelta(minutes=rng.randint(2, 10))
    order = world.create_sales_order(organization_id, customer.entity_id, at=order_at, correlation_id=correlation)
    world.review_order(order.entity_id, cancel_share=0.0)
    invoice_at = order_at + timedelta(minutes=rng.randint(5, 30))
    invoice = world.create_invoice(organization_id, order_id=order.entity_id, at=invoice_at, correlation_id=correlation)
    return [customer, order, invoice]


def daily(world: BatchlyWorld, organization_id: UUID, day: date, *, max_orders: int | None = None) -> list[AnyEnvelope]:
    """Orders for every active customer whose standing order includes ``day``'s weekday, then their invoices.

    The batch is spread over the first five minutes after 8:00 and 8:20 local time, in customer order, so invoice
    numbers follow order numbers. Returns nothing when no customer orders that day.
    """
    org = world.organization(organization_id)
    weekday = day.weekday()
    customers = [c for c in world.customers_of(organization_id) if c.payload.active and weekday in c.weekdays]
    customers = customers[:max_orders] if max_orders is not None else customers
    if not customers:
        return []
    correlation = world.new_id()
    eight = datetime.combine(day, time(8, 0), tzinfo=org.zone)
    spacing = timedelta(milliseconds=max(1, _BATCH_WINDOW_MS // len(customers)))
    events: list[AnyEnvelope] = [
        world.create_sales_order(
            organization_id, customer.customer_id, at=eight + index * spacing, correlation_id=correlation
        )
        for index, customer in enumerate(customers)
    ]
    approved = [event.entity_id for event in events if world.review_order(event.entity_id)]
    billing = eight + timedelta(minutes=_INVOICE_MINUTES)
    events.extend(
        world.create_invoice(
            organization_id, order_id=order_id, at=billing + index * spacing, correlation_id=correlation
        )
        for index, order_id in enumerate(approved)
    )
    return events


def mixed(
    world: BatchlyWorld, orgs: Sequence[UUID] | int, n_events: int, mix: Mapping[str, float] | None
) -> Iterator[AnyEnvelope]:
    """Validate the arguments now, then generate lazily (the world advances as the iterator is consumed).

    With ``orgs`` a number, that many organizations are created first and their ``OrganizationUpserted`` events
    open the stream (they count towards ``n_events``).
    """
    cumulative = _cumulative_weights(DEFAULT_MIX if mix is None else mix)
    if n_events < 0:
        raise ValueError("n_events must be >= 0")
    if isinstance(orgs, int):
        if orgs < 1:
            raise ValueError("need at least one organization")
    else:
        if not orgs:
            raise ValueError("need at least one organization")
        for organization_id in orgs:
            world.organization(organization_id)
    return itertools.islice(_stream(world, orgs, cumulative), n_events)


def _cumulative_weights(mix: Mapping[str, float]) -> list[float]:
    unknown = sorted(set(mix) - set(MIX_KINDS))
    if unknown:
        raise ValueError(f"unknown event kinds in mix: {unknown} (known: {list(MIX_KINDS)})")
    weights = [float(mix.get(kind, 0.0)) for kind in MIX_KINDS]
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("mix weights must be finite, >= 0, and not all zero")
    return list(itertools.accumulate(weights))


def _stream(world: BatchlyWorld, orgs: Sequence[UUID] | int, cumulative: list[float]) -> Iterator[AnyEnvelope]:
    if isinstance(orgs, int):
        created = [world.add_organization() for _ in range(orgs)]
        yield from created
        organization_ids = [event.entity_id for event in created]
    else:
        organization_ids = list(orgs)
    rng = world.rng
    while True:
        kind = rng.choices(MIX_KINDS, cum_weights=cumulative)[0]
        org = world.organization(organization_ids[rng.randrange(len(organization_ids))])
        yield from _step(world, org, kind)


def _step(world: BatchlyWorld, org: OrganizationState, kind: str) -> list[AnyEnvelope]:
    while True:
        events = _STEPS[kind](world, org)
        if events:
            return events
        kind = _FALLBACK[kind]


def _update_organization(world: BatchlyWorld, org: OrganizationState) -> list[AnyEnvelope]:
    return [world.update_organization(org.organization_id)]


def _create_customer(world: BatchlyWorld, org: OrganizationState) -> list[AnyEnvelope]:
    return [world.create_customer(org.organization_id)]


def _update_customer(world: BatchlyWorld, org: OrganizationState) -> list[AnyEnvelope]:
    if not org.customers:
        return []
    return [world.update_customer(world.rng.choice(org.customers))]


def _create_item(world: BatchlyWorld, org: OrganizationState) -> list[AnyEnvelope]:
    if len(org.pushed_skus) >= len(world.catalog):
        return []
    return [world.create_item(org.organization_id)]


def _create_order(world: BatchlyWorld, org: OrganizationState) -> list[AnyEnvelope]:
    if not org.active_customers:
        return []
    return [world.create_sales_order(org.organization_id)]


def _create_invoice(world: BatchlyWorld, org: OrganizationState) -> list[AnyEnvelope]:
    """Invoice the oldest pending order (reviewing it first), or take an order and invoice it right away."""
    while org.pending_orders:
        order = world.order(org.pending_orders[0])
        if order.status == "approved" or world.review_order(order.order_id):
            return [world.create_invoice(org.organization_id, order_id=order.order_id)]
    if not org.active_customers:
        return []
    correlation = world.new_id()
    order_event = world.create_sales_order(org.organization_id, correlation_id=correlation)
    world.review_order(order_event.entity_id, cancel_share=0.0)
    invoice = world.create_invoice(org.organization_id, order_id=order_event.entity_id, correlation_id=correlation)
    return [order_event, invoice]


def _void_invoice(world: BatchlyWorld, org: OrganizationState) -> list[AnyEnvelope]:
    if not org.voidable_invoices:
        return []
    return [world.void_invoice(org.voidable_invoices.choice(world.rng))]


def _create_credit_memo(world: BatchlyWorld, org: OrganizationState) -> list[AnyEnvelope]:
    if not org.creditable_invoices:
        return []
    try:
        return [world.create_credit_memo(org.creditable_invoices.choice(world.rng))]
    except NotEligible:  # the little credit room left fits no line; another step is taken instead
        return []


def _record_payment(world: BatchlyWorld, org: OrganizationState) -> list[AnyEnvelope]:
    if not org.open_invoices:
        return []
    return [world.record_payment(org.open_invoices.choice(world.rng))]


def _issue_refund(world: BatchlyWorld, org: OrganizationState) -> list[AnyEnvelope]:
    memos, invoices, rng = org.refundable_credit_memos, org.refundable_invoices, world.rng
    if memos and (not invoices or rng.random() < 0.5):
        return [world.issue_refund(credit_memo_id=memos.choice(rng))]
    if invoices:
        return [world.issue_refund(invoice_id=invoices.choice(rng))]
    return []


_STEPS: Final[Mapping[str, Callable[[BatchlyWorld, OrganizationState], list[AnyEnvelope]]]] = {
    "OrganizationUpserted": _update_organization,
    "CustomerCreated": _create_customer,
    "CustomerUpdated": _update_customer,
    "ItemCreated": _create_item,
    "SalesOrderCreated": _create_order,
    "InvoiceCreated": _create_invoice,
    "InvoiceVoided": _void_invoice,
    "CreditMemoCreated": _create_credit_memo,
    "PaymentRecorded": _record_payment,
    "RefundIssued": _issue_refund,
}
