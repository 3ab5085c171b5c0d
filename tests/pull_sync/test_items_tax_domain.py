"""Items: which types and states reach Batchly, SKU-then-Name matching, the push mapping; tax rates and codes."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from qbsync.contracts.batchly import ItemPayload
from qbsync.domain.items import (
    BatchlyItem,
    Catalog,
    new_item_body,
    parse_item,
    plan_item,
    qbo_item_type,
    validate_new_item,
)
from qbsync.domain.pulls import Published, plan_change
from qbsync.domain.tax import parse_tax_code, parse_tax_rate


def _row(**fields: Any) -> dict[str, Any]:
    return {
        "Id": "10",
        "Name": "Sourdough Loaf",
        "Type": "Inventory",
        "Active": True,
        "UnitPrice": Decimal("6.5"),
        "IncomeAccountRef": {"value": "2", "name": "Sales of Product Income"},
        "MetaData": {"LastUpdatedTime": "2026-03-01T04:00:00-08:00"},
    } | fields


def _plan(row: dict[str, Any], previous: Published | None = None, *, include_inactive: bool = False) -> str | None:
    change, _, _ = plan_item(parse_item(row), None, "none", previous, include_inactive=include_inactive)
    return change


@pytest.mark.parametrize(
    ("item_type", "active", "include_inactive", "expected"),
    [
        ("Inventory", True, False, "created"),
        ("Service", True, False, "created"),
        ("NonInventory", True, False, None),
        ("Category", True, False, None),
        ("Group", True, False, None),
        ("Service", False, False, None),
        ("Service", False, True, "created"),
        ("NonInventory", False, True, None),
    ],
)
def test_only_active_inventory_and_service_items_reach_batchly_by_default(
    item_type: str, active: bool, include_inactive: bool, expected: str | None
) -> None:
    assert _plan(_row(Type=item_type, Active=active), include_inactive=include_inactive) == expected


def test_changes_deactivations_and_reactivations_are_published_once() -> None:
    item = parse_item(_row())
    _, digest, active = plan_item(item, None, "none", None, include_inactive=False)
    published = Published(digest, active)
    assert _plan(_row(), published) is None, "nothing changed"
    assert _plan(_row(UnitPrice=Decimal("6.50")), published) is None, "6.5 and 6.50 are one price"
    assert _plan(_row(UnitPrice=7), published) == "updated"
    assert _plan(_row(Active=False), published) == "deactivated"
    _, gone_digest, gone_active = plan_item(
        parse_item(_row(Active=False)), None, "none", published, include_inactive=False
    )
    deactivated = Published(gone_digest, gone_active)
    assert _plan(_row(Active=False, UnitPrice=9), deactivated) is None, "edits to an inactive item are not news"
    assert _plan(_row(Active=True), deactivated) == "updated", "reactivated"
    assert _plan(_row(Type="NonInventory"), published) == "deactivated", "it left the synced types"
    assert qbo_item_type(parse_item(_row(Type="NonInventory")), "Inventory") == "Inventory"


def test_items_match_batchly_by_sku_first_then_by_name() -> None:
    by_sku, by_name, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    catalog = Catalog(
        [
            BatchlyItem(by_sku, "Country Loaf (old name)", sku="sd-001"),
            BatchlyItem(by_name, "  rye   BREAD ", sku=None),
            BatchlyItem(other, "Sourdough Loaf", sku=None),
        ]
    )
    assert catalog.match(parse_item(_row(Sku="SD-001"))) == (by_sku, "sku"), "SKU wins over a name match"
    assert catalog.match(parse_item(_row(Name="Rye Bread", Sku="RY-9"))) == (by_name, "name")
    assert catalog.match(parse_item(_row(Name="Baguette"))) == (None, "none")
    twins = Catalog(
        [BatchlyItem(uuid.uuid4(), "A", "X1"), BatchlyItem(uuid.uuid4(), "B", "X1"), BatchlyItem(other, "Z")]
    )
    assert twins.match(parse_item(_row(Name="Z", Sku="X1"))) == (other, "name"), "a shared SKU matches nobody"


def test_parsing_keeps_sku_account_and_exact_price() -> None:
    item = parse_item(_row(Sku="SD-1", UnitPrice=Decimal("2.12345"), Description="Naturally leavened"))
    assert (item.sku, item.unit_price, item.description) == ("SD-1", Decimal("2.12345"), "Naturally leavened")
    assert (item.income_account_id, item.income_account_name) == ("2", "Sales of Product Income")
    assert parse_item(_row(UnitPrice=-1)).unit_price is None


def test_a_batchly_item_maps_to_a_quickbooks_service_or_inventory_item() -> None:
    service = ItemPayload(item_id=uuid.uuid4(), name=" Delivery ", sku="DLV", unit_price=Decimal("15"))
    body = new_item_body(service, income_account_id="1")
    assert body == {
        "Name": "Delivery",
        "Type": "Service",
        "UnitPrice": Decimal("15"),
        "Taxable": True,
        "Active": True,
        "IncomeAccountRef": {"value": "1"},
        "Sku": "DLV",
    }
    product = ItemPayload(item_id=uuid.uuid4(), name="Bagel", unit_price=Decimal("1.25"), item_type="product")
    with pytest.raises(ValueError, match="Inventory"):
        new_item_body(product, income_account_id="2")
    inventory = new_item_body(
        product, income_account_id="2", asset_account_id="5", expense_account_id="6", start_date=date(2026, 3, 1)
    )
    assert inventory["Type"] == "Inventory"
    assert (inventory["QtyOnHand"], inventory["InvStartDate"], inventory["TrackQtyOnHand"]) == (0, "2026-03-01", True)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"name": "Bread: Rye"}, "name", "':'"),
        ({"name": "x" * 101}, "name", "100"),
        ({"name": "Tab\tName"}, "name", "control"),
        ({"sku": "s" * 101}, "sku", "100"),
        ({"description": "d" * 4001}, "description", "4000"),
    ],
)
def test_item_validation_names_the_field(fields: dict[str, Any], field: str, words: str) -> None:
    item = ItemPayload(item_id=uuid.uuid4(), unit_price=Decimal(1), **({"name": "Bread"} | fields))
    problems = validate_new_item(item)
    assert problems
    assert problems[0].field == field
    assert words in problems[0].message


def test_tax_rates_and_codes_as_batchly_sees_them() -> None:
    rate = parse_tax_rate(
        {"Id": "3", "Name": "CA State Sales Tax", "RateValue": 7.25, "AgencyRef": {"value": "1"}, "Active": True},
        {"1": "California Department of Tax and Fee Administration"},
    )
    county = parse_tax_rate({"Id": "4", "Name": "Alameda County", "RateValue": "3", "AgencyRef": {"value": "1"}}, {})
    assert rate is not None
    assert county is not None
    assert (rate.rate_percent, rate.agency_name) == (
        Decimal("7.25"),
        "California Department of Tax and Fee Administration",
    )
    assert parse_tax_rate({"Id": "5", "Name": "Broken", "RateValue": 250}, {}) is None
    details = [{"TaxRateRef": {"value": "3"}}, {"TaxRateRef": {"value": "4"}}]
    code = parse_tax_code(
        {"Id": "2", "Name": "California", "Taxable": True, "SalesTaxRateList": {"TaxRateDetail": details}},
        {"3": rate, "4": county},
    )
    assert (code.rate_ids, code.total_rate_percent) == (("3", "4"), Decimal("10.25"))
    unknown = parse_tax_code({"Id": "9", "Name": "X", "SalesTaxRateList": {"TaxRateDetail": details}}, {"3": rate})
    assert unknown.total_rate_percent is None, "a total is only given when every rate is known"


def test_the_generic_change_decision() -> None:
    assert plan_change(eligible=True, active=True, fingerprint="a", previous=None, include_inactive=False) == "created"
    assert plan_change(eligible=True, active=False, fingerprint="a", previous=None, include_inactive=False) is None
    active = Published("a", True)
    assert plan_change(eligible=True, active=True, fingerprint="a", previous=active, include_inactive=False) is None
    assert (
        plan_change(eligible=True, active=True, fingerprint="b", previous=active, include_inactive=False) == "updated"
    )
    assert plan_change(eligible=True, active=False, fingerprint="b", previous=active, include_inactive=False) == (
        "deactivated"
    )
