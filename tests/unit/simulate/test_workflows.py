"""The seed's workflows: a new customer's first order and invoice, and the 8:00 / 8:20 daily batch."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from qbsync.contracts.batchly import CustomerCreated, InvoiceCreated, SalesOrderCreated
from qbsync.simulate import TERMS, BatchlyWorld, NotEligible, item_id_for

START = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
MONDAY = date(2025, 3, 3)


def test_new_customer_workflow_creates_customer_then_order_then_invoice() -> None:
    world = BatchlyWorld(1, start=START)
    org = world.add_organization().entity_id
    customer, order, invoice = world.new_customer_workflow(org)
    assert isinstance(customer, CustomerCreated)
    assert isinstance(order, SalesOrderCreated)
    assert isinstance(invoice, InvoiceCreated)
    assert order.payload.customer_id == invoice.payload.customer_id == customer.entity_id
    assert invoice.payload.order_id == order.entity_id
    assert invoice.causation_id == order.event_id
    assert customer.correlation_id is not None
    assert customer.correlation_id == order.correlation_id == invoice.correlation_id
    assert customer.occurred_at < order.occurred_at < invoice.occurred_at
    ordered = [(line.item_id, line.quantity, line.unit_price) for line in order.payload.lines]
    billed = [(line.item_id, line.quantity, line.unit_price) for line in invoice.payload.lines]
    assert billed == ordered


def test_daily_workflow_orders_at_eight_and_invoices_at_eight_twenty_local_time() -> None:
    world = BatchlyWorld(2, start=START)
    org = world.add_organization(timezone="America/Denver").entity_id
    for _ in range(60):
        world.create_customer(org)
    events = world.daily_workflow(org, MONDAY)
    orders = [event for event in events if isinstance(event, SalesOrderCreated)]
    invoices = [event for event in events if isinstance(event, InvoiceCreated)]
    assert orders
    assert invoices
    assert events == [*orders, *invoices]
    zone = ZoneInfo("America/Denver")
    eight = datetime.combine(MONDAY, time(8), tzinfo=zone)
    for order in orders:
        assert eight <= order.occurred_at < eight + timedelta(minutes=5)
        assert order.payload.order_date == MONDAY
        assert order.payload.status == "draft"
    for event in invoices:
        assert eight + timedelta(minutes=20) <= event.occurred_at < eight + timedelta(minutes=25)
        assert event.payload.invoice_date == MONDAY
        assert event.payload.due_date == MONDAY + timedelta(days=TERMS[event.payload.terms or ""])
    assert len({event.correlation_id for event in events}) == 1


def test_daily_workflow_orders_only_from_active_customers_on_their_weekdays() -> None:
    world = BatchlyWorld(3, start=START)
    org = world.add_organization().entity_id
    ids = [world.create_customer(org).entity_id for _ in range(40)]
    world.update_customer(ids[0], change="deactivate")
    expected = {c for c in ids if world.customer(c).payload.active and MONDAY.weekday() in world.customer(c).weekdays}
    events = world.daily_workflow(org, MONDAY)
    ordered = {event.payload.customer_id for event in events if isinstance(event, SalesOrderCreated)}
    assert ordered == expected
    assert ids[0] not in ordered


def test_daily_invoices_come_from_that_mornings_approved_orders_in_order() -> None:
    world = BatchlyWorld(4, start=START)
    org = world.add_organization().entity_id
    for _ in range(200):
        world.create_customer(org)
    events = world.daily_workflow(org, MONDAY)
    orders = {event.entity_id: event for event in events if isinstance(event, SalesOrderCreated)}
    invoices = [event for event in events if isinstance(event, InvoiceCreated)]
    sources = [event.payload.order_id for event in invoices]
    assert all(order_id in orders for order_id in sources)
    assert all(world.order(order_id).status == "invoiced" for order_id in orders if order_id in sources)
    cancelled = [order_id for order_id in orders if world.order(order_id).status == "cancelled"]
    assert len(invoices) + len(cancelled) == len(orders)
    order_positions = [list(orders).index(order_id) for order_id in sources if order_id is not None]
    assert order_positions == sorted(order_positions)
    for invoice in invoices:
        assert invoice.payload.order_id is not None
        source = orders[invoice.payload.order_id].payload
        assert invoice.payload.customer_id == source.customer_id
        assert [line.item_id for line in invoice.payload.lines] == [line.item_id for line in source.lines]


def test_daily_workflow_respects_max_orders_and_returns_nothing_without_customers() -> None:
    world = BatchlyWorld(5, start=START)
    org = world.add_organization().entity_id
    assert world.daily_workflow(org, MONDAY) == []
    for _ in range(30):
        world.create_customer(org)
    events = world.daily_workflow(org, MONDAY, max_orders=3)
    assert sum(isinstance(event, SalesOrderCreated) for event in events) == 3


def test_items_are_pushed_once_with_the_ids_invoices_use() -> None:
    world = BatchlyWorld(6, start=START)
    org = world.add_organization().entity_id
    pushed = [world.create_item(org) for _ in world.catalog]
    assert {event.payload.sku for event in pushed} == {item.sku for item in world.catalog}
    with pytest.raises(NotEligible):
        world.create_item(org)
    assert all(event.entity_id == item_id_for(org, event.payload.sku or "") for event in pushed)
    world.create_customer(org)
    invoice = world.create_invoice(org, line_count=20)
    assert {line.item_id for line in invoice.payload.lines} <= {event.entity_id for event in pushed}
