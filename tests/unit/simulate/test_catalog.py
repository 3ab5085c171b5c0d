"""The catalog: realistic, shareable with the emulator, and checked before it can produce a bad line."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from qbsync.simulate import DEFAULT_CATALOG, BatchlyWorld, CatalogItem

START = datetime(2025, 2, 3, 10, 0, tzinfo=UTC)


def test_default_catalog_has_about_forty_distinct_realistic_items() -> None:
    assert 35 <= len(DEFAULT_CATALOG) <= 50
    assert len({item.sku for item in DEFAULT_CATALOG}) == len(DEFAULT_CATALOG)
    assert len({item.name.casefold() for item in DEFAULT_CATALOG}) == len(DEFAULT_CATALOG)
    assert {item.item_type for item in DEFAULT_CATALOG} == {"product", "service"}
    assert {item.taxable for item in DEFAULT_CATALOG} == {True, False}
    assert {item.qbo_item_type for item in DEFAULT_CATALOG} == {"Inventory", "Service"}
    assert {item.income_account_name for item in DEFAULT_CATALOG} == {"Sales of Product Income", "Services"}
    assert all(item.description and item.unit_price > 0 for item in DEFAULT_CATALOG)


def test_default_catalog_has_unit_prices_with_three_to_five_decimal_places() -> None:
    places = {-int(item.unit_price.as_tuple().exponent) for item in DEFAULT_CATALOG}
    assert {2, 3, 4, 5} <= places
    assert Decimal("0.125") in {item.unit_price for item in DEFAULT_CATALOG}


@pytest.mark.parametrize(
    ("price", "low", "high", "step"),
    [("0.123456", "1", "2", "1"), ("-1", "1", "2", "1"), ("1", "2", "1", "1"), ("1", "1", "2.5", "1")],
)
def test_catalog_item_rejects_prices_and_quantities_it_cannot_honour(
    price: str, low: str, high: str, step: str
) -> None:
    with pytest.raises(ValueError):
        CatalogItem("X", "X", "x", Decimal(price), "product", True, "Sales", Decimal(low), Decimal(high), Decimal(step))


def test_world_rejects_a_catalog_that_could_build_an_invalid_line() -> None:
    huge = CatalogItem("BIG", "Big", "big", Decimal("99999999999"), "product", True, "Sales", max_quantity=Decimal(100))
    with pytest.raises(ValueError, match="BIG"):
        BatchlyWorld(1, start=START, catalog=[huge])
    with pytest.raises(ValueError, match="unique"):
        BatchlyWorld(1, start=START, catalog=[DEFAULT_CATALOG[0], DEFAULT_CATALOG[0]])


def test_a_custom_catalog_is_what_invoices_are_made_of() -> None:
    items = [item for item in DEFAULT_CATALOG if item.item_type == "service"]
    world = BatchlyWorld(2, start=START, catalog=items)
    org = world.add_organization().entity_id
    world.create_customer(org)
    events = list(world.mixed_stream([org], 500))
    skus = {line.sku for e in events if e.event_type == "InvoiceCreated" for line in e.payload.lines}
    assert skus
    assert skus <= {item.sku for item in items}
