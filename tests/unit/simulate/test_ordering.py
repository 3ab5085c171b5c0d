"""Order guarantees: gap-free invoice numbers per organization, monotonic entity versions, causal streams."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest

from qbsync.contracts.batchly import (
    CreditMemoCreated,
    CustomerCreated,
    CustomerUpdated,
    InvoiceCreated,
    InvoiceVoided,
    ItemCreated,
    OrganizationUpserted,
    PaymentRecorded,
    RefundIssued,
    SalesOrderCreated,
)
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.simulate import BatchlyWorld, WorldConfig

START = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


def numbers_by_org(events: list[AnyEnvelope]) -> dict[UUID, list[str]]:
    numbers: dict[UUID, list[str]] = defaultdict(list)
    for event in events:
        if isinstance(event, InvoiceCreated):
            numbers[event.organization_id].append(event.payload.invoice_number)
    return numbers


def assert_causal(events: list[AnyEnvelope]) -> None:
    """Independent check: nothing refers to an entity that has not been created earlier in the list."""
    orgs: set[UUID] = set()
    customers: set[UUID] = set()
    orders: set[UUID] = set()
    invoices: set[UUID] = set()
    memos: set[UUID] = set()
    for event in events:
        assert event.organization_id in orgs or isinstance(event, OrganizationUpserted)
        payload = event.payload
        if isinstance(event, OrganizationUpserted):
            orgs.add(event.entity_id)
        elif isinstance(event, CustomerCreated):
            assert event.entity_id not in customers
            customers.add(event.entity_id)
        elif isinstance(event, CustomerUpdated):
            assert event.entity_id in customers
        elif isinstance(event, SalesOrderCreated):
            assert payload.customer_id in customers
            orders.add(event.entity_id)
        elif isinstance(event, InvoiceCreated):
            assert payload.customer_id in customers
            assert payload.order_id is None or payload.order_id in orders
            invoices.add(event.entity_id)
        elif isinstance(event, InvoiceVoided):
            assert event.entity_id in invoices
        elif isinstance(event, PaymentRecorded):
            assert payload.customer_id in customers
            assert all(application.invoice_id in invoices for application in payload.applications)
        elif isinstance(event, CreditMemoCreated):
            assert payload.customer_id in customers
            assert payload.invoice_id in invoices
            memos.add(event.entity_id)
        elif isinstance(event, RefundIssued):
            assert payload.credit_memo_id in memos or payload.invoice_id in invoices
        else:
            assert isinstance(event, ItemCreated)


def test_invoice_numbers_are_sequential_per_organization_without_gaps() -> None:
    world = BatchlyWorld(1, start=START)
    events = list(world.mixed_stream(3, 8_000))
    for day in range(7, 10):
        for org in world.organization_ids:
            events += world.daily_workflow(org, date(2025, 1, day))
    numbers = numbers_by_org(events)
    assert len(numbers) == 3
    for sequence in numbers.values():
        assert all(re.fullmatch(r"INV-\d{6}", number) for number in sequence)
        assert [int(number[4:]) for number in sequence] == list(range(1, len(sequence) + 1))


def test_invoice_number_prefix_width_and_start_are_configurable() -> None:
    world = BatchlyWorld(2, start=START, config=WorldConfig(invoice_prefix="B-", number_width=4))
    first = world.add_organization(first_invoice_number=45).entity_id
    second = world.add_organization(invoice_prefix="ACME/").entity_id
    for org in (first, second):
        world.create_customer(org)
    made = [world.create_invoice(org).payload.invoice_number for org in (first, first, second, second)]
    assert made == ["B-0045", "B-0046", "ACME/0001", "ACME/0002"]


def test_a_gap_appears_only_when_asked_for() -> None:
    world = BatchlyWorld(3, start=START)
    org = world.add_organization().entity_id
    world.create_customer(org)
    made = [
        world.create_invoice(org).payload.invoice_number,
        world.create_invoice(org, number_gap=2).payload.invoice_number,
        world.create_invoice(org).payload.invoice_number,
    ]
    assert made == ["INV-000001", "INV-000004", "INV-000005"]


def test_entity_version_rises_by_one_per_event_of_an_entity() -> None:
    world = BatchlyWorld(4, start=START)
    events = list(world.mixed_stream(2, 10_000))
    versions: dict[tuple[str, UUID], list[int]] = defaultdict(list)
    for event in events:
        versions[(type(event).ENTITY_TYPE, event.entity_id)].append(event.entity_version)
    assert any(len(history) > 2 for history in versions.values())
    for history in versions.values():
        assert history == list(range(1, len(history) + 1))


def test_invoice_void_continues_the_invoice_version_history() -> None:
    world = BatchlyWorld(5, start=START)
    org = world.add_organization().entity_id
    world.create_customer(org)
    invoice = world.create_invoice(org)
    voided = world.void_invoice(invoice.entity_id)
    assert (voided.entity_id, voided.entity_version) == (invoice.entity_id, 2)
    assert voided.payload.invoice_number == invoice.payload.invoice_number
    assert voided.payload.voided_at == voided.occurred_at


@pytest.mark.parametrize(
    "mix",
    [
        None,
        {"PaymentRecorded": 1},
        {"RefundIssued": 1},
        {"InvoiceVoided": 1, "CreditMemoCreated": 1},
        {"CustomerUpdated": 5, "ItemCreated": 1, "OrganizationUpserted": 1},
    ],
)
def test_mixed_stream_is_causal_and_exactly_as_long_as_asked(mix: dict[str, float] | None) -> None:
    world = BatchlyWorld(6, start=START)
    events = list(world.mixed_stream(3, 4_000, mix=mix))
    assert len(events) == 4_000
    assert_causal(events)


def test_mixed_stream_over_existing_organizations_is_causal_after_their_setup() -> None:
    world = BatchlyWorld(7, start=START)
    setup = [world.add_organization(), world.add_organization()]
    events = setup + list(world.mixed_stream([event.entity_id for event in setup], 3_000))
    assert_causal(events)
    assert {event.organization_id for event in events} == {event.entity_id for event in setup}


def test_mixed_stream_rejects_bad_arguments() -> None:
    world = BatchlyWorld(8, start=START)
    with pytest.raises(ValueError, match="unknown event kinds"):
        world.mixed_stream(1, 10, mix={"InvoicePaid": 1})
    with pytest.raises(ValueError, match="weights"):
        world.mixed_stream(1, 10, mix={"InvoiceCreated": 0})
    with pytest.raises(ValueError, match="organization"):
        world.mixed_stream([], 10)
    with pytest.raises(KeyError):
        world.mixed_stream([UUID(int=1)], 10)


def test_operations_at_given_times_move_the_clock_forward_only() -> None:
    world = BatchlyWorld(9, start=START)
    org = world.add_organization().entity_id
    later = START + timedelta(days=2)
    customer = world.create_customer(org, at=later)
    assert customer.occurred_at == later
    earlier = world.create_customer(org, at=START + timedelta(days=1))
    assert earlier.occurred_at == START + timedelta(days=1)
    assert world.now == later
    assert world.create_customer(org).occurred_at > later
