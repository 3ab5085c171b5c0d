"""Customers: realistic and QuickBooks-valid by default; hard cases and (opt-in) invalid ones in the asked share."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from qbsync.contracts.batchly import CustomerCreated, CustomerPayload, CustomerUpdated
from qbsync.simulate import HARD_CASES, INVALID_CASES, BatchlyWorld, CustomerCase, WorldConfig

START = datetime(2025, 4, 1, 15, 0, tzinfo=UTC)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"(\(\d{3}\) |\d{3}[-.]|\+1 \d{3} )555[-. ]01\d\d")


def qbo_problems(customer: CustomerPayload) -> list[str]:
    """What QuickBooks would reject (DisplayName rules, field limits, e-mail format), written independently."""
    problems = []
    name = customer.display_name
    if not name.strip():
        problems.append("blank display name")
    if ":" in name:
        problems.append("colon in display name")
    if len(name) > 500:
        problems.append("display name over 500")
    if customer.email is not None and (len(customer.email) > 100 or not EMAIL.fullmatch(customer.email)):
        problems.append("bad email")
    parts = (customer.company_name, customer.given_name, customer.family_name)
    if any(part is not None and len(part) > 100 for part in parts):
        problems.append("name part over 100")
    return problems


def hard_traits(customer: CustomerPayload) -> set[str]:
    """The awkward-but-valid properties a hard case carries (ordinary customers carry none)."""
    name, email = customer.display_name, customer.email or ""
    traits = set()
    if "'" in name or "\u2019" in name:
        traits.add("apostrophe")
    if not name.isascii():
        traits.add("unicode")
    if len(name) == 500:
        traits.add("max_length")
    if "+" in email.partition("@")[0]:
        traits.add("plus_email")
    return traits


def customers(config: WorldConfig, count: int, seed: int = 1) -> list[CustomerPayload]:
    world = BatchlyWorld(seed, start=START, config=config)
    org = world.add_organization().entity_id
    return [world.create_customer(org).payload for _ in range(count)]


def test_default_customers_are_all_valid_for_quickbooks_including_their_updates() -> None:
    world = BatchlyWorld(2, start=START)
    events = list(world.mixed_stream(2, 6_000, mix={"CustomerCreated": 1, "CustomerUpdated": 2}))
    snapshots = [event.payload for event in events if isinstance(event, CustomerCreated | CustomerUpdated)]
    assert len(snapshots) > 5_000
    assert [problem for snapshot in snapshots for problem in qbo_problems(snapshot)] == []


def test_ordinary_customers_look_real() -> None:
    found = customers(WorldConfig(hard_case_share=0.0), 400)
    for customer in found:
        assert hard_traits(customer) == set()
        assert customer.billing_address is not None
        assert customer.billing_address.country == "US"
        assert re.fullmatch(r"\d{5}", customer.billing_address.postal_code or "")
        assert customer.phone is None or PHONE.fullmatch(customer.phone)
        assert customer.email is None or customer.email.endswith(("example.com", "example.net", "example.org"))
    people = [c for c in found if c.company_name is None]
    businesses = [c for c in found if c.company_name is not None]
    assert people
    assert businesses
    assert all(c.display_name == f"{c.given_name} {c.family_name}" for c in people)


def test_display_names_are_unique_per_organization_ignoring_case() -> None:
    found = customers(WorldConfig(hard_case_share=0.5), 2_000)
    names = [customer.display_name.casefold() for customer in found]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("share", [0.0, 0.1, 0.35])
def test_hard_case_share_is_honoured_and_hard_cases_stay_valid(share: float) -> None:
    found = customers(WorldConfig(hard_case_share=share), 2_000, seed=3)
    hard = [customer for customer in found if hard_traits(customer)]
    assert abs(len(hard) / len(found) - share) < 0.035
    assert [problem for customer in hard for problem in qbo_problems(customer)] == []


def test_each_hard_case_shows_its_trait() -> None:
    world = BatchlyWorld(4, start=START)
    org = world.add_organization().entity_id
    for case in HARD_CASES:
        for _ in range(30):
            payload = world.create_customer(org, case=case).payload
            assert case.value in hard_traits(payload), (case, payload.display_name)
            assert qbo_problems(payload) == []


def test_hard_cases_include_apostrophes_accents_and_cjk() -> None:
    names = [customer.display_name for customer in customers(WorldConfig(hard_case_share=1.0), 600, seed=5)]
    assert any("O'" in name for name in names)
    assert any("\u2019" in name for name in names)
    assert any(any(ch in name for ch in "éëüöø") for name in names)
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in name) for name in names)


def test_invalid_customers_appear_only_when_asked_for_and_in_the_asked_share() -> None:
    assert not any(qbo_problems(c) for c in customers(WorldConfig(hard_case_share=0.5), 2_000, seed=6))
    found = customers(WorldConfig(invalid_share=0.25), 2_000, seed=6)
    invalid = [customer for customer in found if qbo_problems(customer)]
    assert abs(len(invalid) / len(found) - 0.25) < 0.035


def test_each_invalid_case_is_rejected_for_its_reason() -> None:
    expected = {
        CustomerCase.BLANK_NAME: "blank display name",
        CustomerCase.COLON_NAME: "colon in display name",
        CustomerCase.BAD_EMAIL: "bad email",
        CustomerCase.TOO_LONG_NAME: "display name over 500",
    }
    assert set(expected) == set(INVALID_CASES)
    world = BatchlyWorld(7, start=START)
    org = world.add_organization().entity_id
    for case, reason in expected.items():
        for _ in range(20):
            customer = world.create_customer(org, case=case)
            assert reason in qbo_problems(customer.payload)
            assert world.customer(customer.entity_id).case is case


def test_updates_keep_the_customer_case_and_change_one_thing() -> None:
    world = BatchlyWorld(8, start=START)
    org = world.add_organization().entity_id
    apostrophe = world.create_customer(org, case=CustomerCase.APOSTROPHE).entity_id
    bad_email = world.create_customer(org, case=CustomerCase.BAD_EMAIL).entity_id
    renamed = world.update_customer(apostrophe, change="rename").payload
    assert "apostrophe" in hard_traits(renamed)
    assert "bad email" in qbo_problems(world.update_customer(bad_email, change="email").payload)
    before = world.customer(apostrophe).payload
    moved = world.update_customer(apostrophe, change="address").payload
    assert moved.billing_address != before.billing_address
    assert (moved.display_name, moved.email, moved.phone) == (before.display_name, before.email, before.phone)


def test_deactivated_customers_get_no_new_orders_until_reactivated() -> None:
    world = BatchlyWorld(9, start=START)
    org = world.add_organization().entity_id
    only = world.create_customer(org).entity_id
    deactivated = world.update_customer(only, change="deactivate")
    assert deactivated.payload.active is False
    assert deactivated.entity_version == 2
    events = list(world.mixed_stream([org], 200, mix={"SalesOrderCreated": 1, "InvoiceCreated": 1}))
    assert all(getattr(event.payload, "customer_id", None) != only for event in events)
    assert world.update_customer(only, change="reactivate").payload.active is True
    assert world.create_sales_order(org, only).payload.customer_id == only
