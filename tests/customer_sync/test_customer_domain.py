"""Customer domain: validation names the field, the mapping is the seed's table, the decision is order-safe."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from qbsync.contracts.batchly import Address, CustomerPayload
from qbsync.domain.customers import (
    CustomerLink,
    converge_body,
    customer_body,
    decide,
    fingerprint,
    update_body,
    validate_customer,
)


def _customer(**fields: Any) -> CustomerPayload:
    return CustomerPayload(customer_id=uuid.uuid4(), **({"display_name": "Acme Bakery"} | fields))


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"display_name": "   "}, "display_name", "empty"),
        ({"display_name": "Acme: East"}, "display_name", "':'"),
        ({"display_name": "x" * 501}, "display_name", "500"),
        ({"display_name": "Tab\tName"}, "display_name", "control"),
        ({"email": "not-an-email"}, "email", "valid e-mail"),
        ({"email": "a@b"}, "email", "valid e-mail"),
        ({"email": ("x" * 95) + "@e.com"}, "email", "100"),
        ({"company_name": "c" * 101}, "company_name", "100"),
        ({"phone": "1" * 31}, "phone", "30"),
        ({"billing_address": Address(city="Portland")}, "billing_address.line1", "required"),
        ({"billing_address": Address(line1="1 Main St")}, "billing_address.city", "postal code"),
        (
            {"billing_address": Address(line1="1 Main", city="X", postal_code="ABC", country="US")},
            "billing_address.postal_code",
            "ZIP",
        ),
    ],
)
def test_validation_fails_with_the_field_named(fields: dict[str, Any], field: str, words: str) -> None:
    problems = validate_customer(_customer(**fields))
    assert problems, fields
    assert problems[0].field == field
    assert words in problems[0].message


@pytest.mark.parametrize(
    "fields",
    [
        {"display_name": "O'Brien's Bakery"},
        {"display_name": "Café Zoë — Müller GmbH 北京"},
        {"display_name": "x" * 500},
        {"email": "owner+billing@acme.example.com"},
        {
            "billing_address": Address(
                line1="1 Main St", city="Portland", region="OR", postal_code="97201", country="US"
            )
        },
        {"billing_address": Address()},
    ],
)
def test_valid_customers_pass(fields: dict[str, Any]) -> None:
    assert validate_customer(_customer(**fields)) == []


def test_mapping_is_exactly_the_seeds_table() -> None:
    customer = _customer(
        display_name=" Acme Bakery ",
        company_name="Acme Bakery LLC",
        email="owner@acme.example",
        phone="555-0100",
        billing_address=Address(
            line1="1 Main St", line2="Suite 5", city="Portland", region="OR", postal_code="97201", country="US"
        ),
        active=False,
        given_name="Ann",
        family_name="Lee",
        notes="VIP",
    )
    assert customer_body(customer) == {
        "DisplayName": "Acme Bakery",
        "CompanyName": "Acme Bakery LLC",
        "PrimaryEmailAddr": {"Address": "owner@acme.example"},
        "PrimaryPhone": {"FreeFormNumber": "555-0100"},
        "BillAddr": {
            "Line1": "1 Main St",
            "Line2": "Suite 5",
            "City": "Portland",
            "CountrySubDivisionCode": "OR",
            "PostalCode": "97201",
            "Country": "US",
        },
        "Active": False,
    }
    assert customer_body(_customer()) == {"DisplayName": "Acme Bakery", "Active": True}


def test_update_clears_what_batchly_removed() -> None:
    before = customer_body(
        _customer(
            email="a@b.example", company_name="Old Co", billing_address=Address(line1="1 Main", line2="Apt 2", city="X")
        )
    )
    after = customer_body(_customer(billing_address=Address(line1="1 Main", city="X")))
    body = update_body(after, before)
    assert body["PrimaryEmailAddr"] == {"Address": ""}
    assert body["CompanyName"] == ""
    assert body["BillAddr"] == {"Line1": "1 Main", "Line2": "", "City": "X"}
    assert update_body(after, None) == after


def test_a_linked_customer_converges_and_loses_what_batchly_no_longer_has() -> None:
    """Found by the e2e under faults: an uncertain create of an older snapshot (with a company name) was linked by a
    later update without one, and the company name stayed in QuickBooks."""
    in_qbo = {
        "Id": "58",
        "SyncToken": "0",
        "DisplayName": "Jamal Rodriguez",
        "CompanyName": "Red Anchor Food Truck",
        "PrimaryEmailAddr": {"Address": "j@example.net"},
        "BillAddr": {"Id": "91", "Line1": "8456 Market St", "Line2": "Unit 4", "City": "Sacramento"},
        "Balance": 0,
    }
    newest = customer_body(
        _customer(email="j@example.net", billing_address=Address(line1="8456 Market St", city="Sacramento"))
    )
    body = converge_body(newest, in_qbo)
    assert body["CompanyName"] == ""
    assert body["PrimaryEmailAddr"] == {"Address": "j@example.net"}
    assert body["BillAddr"] == {"Line1": "8456 Market St", "Line2": "", "City": "Sacramento"}, (
        "QBO's address Id is not ours"
    )
    assert set(body) == {"DisplayName", "Active", "CompanyName", "PrimaryEmailAddr", "BillAddr"}
    assert converge_body(newest, {"Id": "58", "DisplayName": "Jamal Rodriguez"}) == newest


def test_decision_is_convergent_and_order_safe() -> None:
    body_fp = fingerprint({"DisplayName": "A"})
    link = CustomerLink(qbo_id="58", sync_token="3", last_entity_version=5, pushed_fingerprint=body_fp, linked=False)
    assert decide(link=None, entity_version=3, body_fingerprint=body_fp, force=False).action == "create"
    assert decide(link=link, entity_version=4, body_fingerprint="other", force=False).action == "ignore"
    assert "older" in decide(link=link, entity_version=4, body_fingerprint="other", force=False).reason
    assert decide(link=link, entity_version=5, body_fingerprint="other", force=False).action == "ignore"
    assert decide(link=link, entity_version=6, body_fingerprint=body_fp, force=False).action == "unchanged"
    assert decide(link=link, entity_version=6, body_fingerprint="other", force=False).action == "update"
    assert decide(link=link, entity_version=5, body_fingerprint=body_fp, force=True).action == "update"
    assert decide(link=link, entity_version=4, body_fingerprint=body_fp, force=True).action == "ignore"
