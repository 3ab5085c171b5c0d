"""The products and services a Batchly organization sells: a food-service distributor with delivery and events.

The catalog is plain data so the QBO emulator's demo company can be seeded with exactly the items the generator
invoices (same SKU, name, price, type, taxability and income account); items are matched by SKU, then by name.
Some unit prices carry 3-5 decimal places (labels at 0.125, straws at 0.04125) because QuickBooks' UnitPrice does
and because those prices are where line-amount rounding goes wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal

__all__ = [
    "DEFAULT_CATALOG",
    "PRODUCT_INCOME_ACCOUNT",
    "SERVICE_INCOME_ACCOUNT",
    "CatalogItem",
    "ItemType",
]

ItemType = Literal["product", "service"]

#: Income accounts every new QBO company has (the emulator seeds both).
PRODUCT_INCOME_ACCOUNT: Final = "Sales of Product Income"
SERVICE_INCOME_ACCOUNT: Final = "Services"

_MAX_PRICE_PLACES: Final = 5


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """One sellable item. ``min_quantity``/``max_quantity``/``quantity_step`` say how it is ordered
    (whole cases, pounds to the hundredth, quarter hours, labels by the fifty) so generated quantities look real."""

    sku: str
    name: str
    description: str
    unit_price: Decimal
    item_type: ItemType
    taxable: bool
    income_account_name: str
    min_quantity: Decimal = Decimal(1)
    max_quantity: Decimal = Decimal(10)
    quantity_step: Decimal = Decimal(1)
    #: ``min_quantity`` and ``max_quantity`` in steps (derived; generated quantities are ``step x units``).
    min_units: int = field(init=False, repr=False, compare=False)
    max_units: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        places = -int(self.unit_price.as_tuple().exponent)
        if self.unit_price < 0 or places > _MAX_PRICE_PLACES:
            raise ValueError(f"{self.sku}: unit price must be >= 0 with at most {_MAX_PRICE_PLACES} decimal places")
        if not (0 < self.quantity_step <= self.min_quantity <= self.max_quantity):
            raise ValueError(f"{self.sku}: need 0 < quantity_step <= min_quantity <= max_quantity")
        if self.min_quantity % self.quantity_step or self.max_quantity % self.quantity_step:
            raise ValueError(f"{self.sku}: quantity bounds must be multiples of quantity_step")
        object.__setattr__(self, "min_units", int(self.min_quantity / self.quantity_step))
        object.__setattr__(self, "max_units", int(self.max_quantity / self.quantity_step))

    def qbo_item_body(self, account_ids: Mapping[str, str]) -> dict[str, Any]:
        """The QuickBooks Item an accountant would create for this item (``account_ids``: Account Name -> Id)."""
        return {
            "Name": self.name,
            "Sku": self.sku,
            "Type": "Service" if self.item_type == "service" else "NonInventory",
            "UnitPrice": float(self.unit_price),
            "Taxable": self.taxable,
            "IncomeAccountRef": {"value": account_ids[self.income_account_name]},
        }

    @property
    def qbo_item_type(self) -> Literal["Inventory", "Service"]:
        """The QuickBooks item type Batchly maps to (products are QuickBooks Inventory items)."""
        return "Inventory" if self.item_type == "product" else "Service"


def _product(
    sku: str,
    name: str,
    description: str,
    price: str,
    *,
    taxable: bool = True,
    qty: tuple[str, str, str] = ("1", "10", "1"),
) -> CatalogItem:
    low, high, step = (Decimal(v) for v in qty)
    return CatalogItem(
        sku, name, description, Decimal(price), "product", taxable, PRODUCT_INCOME_ACCOUNT, low, high, step
    )


def _service(
    sku: str,
    name: str,
    description: str,
    price: str,
    *,
    taxable: bool = False,
    qty: tuple[str, str, str] = ("1", "1", "1"),
) -> CatalogItem:
    low, high, step = (Decimal(v) for v in qty)
    return CatalogItem(
        sku, name, description, Decimal(price), "service", taxable, SERVICE_INCOME_ACCOUNT, low, high, step
    )


_POUNDS = ("0.5", "25", "0.01")
_DOZENS = ("1", "24", "1")

#: 42 items: 30 products (most taxable; staple groceries are not) and 12 services.
DEFAULT_CATALOG: Final[tuple[CatalogItem, ...]] = (
    _product("BRD-SOUR-LOAF", "Sourdough Loaf", "Naturally leavened sourdough, 900 g loaf", "4.75", qty=_DOZENS),
    _product("BRD-BAGEL-DZ", "Plain Bagels (dozen)", "Kettle-boiled plain bagels, bag of 12", "9.60"),
    _product("BRD-CROIS-12", "Butter Croissants (12)", "All-butter croissants, par-baked, tray of 12", "18.00"),
    _product("BRD-BRIOCHE-8", "Brioche Burger Buns (8)", "Brioche buns, 4 in., pack of 8", "6.40", qty=_DOZENS),
    _product("BRD-BAGUETTE", "French Baguette", "Classic baguette, 350 g", "2.85", qty=("6", "60", "6")),
    _product(
        "PST-MUFFIN-BLU", "Blueberry Muffin", "Jumbo blueberry muffin, individually wrapped", "1.375", qty=_DOZENS
    ),
    _product(
        "PST-COOKIE-CHOC", "Chocolate Chip Cookie", "Chocolate chip cookie, 3 oz", "0.875", qty=("12", "144", "12")
    ),
    _product(
        "DRY-FLOUR-50", "All-Purpose Flour, 50 lb", "Unbleached all-purpose flour, 50 lb bag", "27.49", taxable=False
    ),
    _product(
        "DRY-SUGAR-25", "Granulated Sugar, 25 lb", "Pure cane granulated sugar, 25 lb bag", "18.95", taxable=False
    ),
    _product("DRY-SALT-KOSHER", "Kosher Salt, 3 lb", "Coarse kosher salt, 3 lb box", "4.19", taxable=False),
    _product(
        "DAI-BUTTER-LB",
        "Unsalted Butter (per lb)",
        "Cultured unsalted butter, sold by weight",
        "4.6275",
        taxable=False,
        qty=_POUNDS,
    ),
    _product("DAI-MILK-GAL", "Whole Milk, 1 gal", "Whole milk, gallon jug", "3.89", taxable=False, qty=_DOZENS),
    _product("DAI-CREAM-QT", "Heavy Cream, 1 qt", "Heavy whipping cream 36%, quart", "5.25", taxable=False),
    _product("DAI-EGGS-15DZ", "Large Eggs, 15 dozen", "Grade A large eggs, case of 15 dozen", "38.70", taxable=False),
    _product("COF-ESPRESSO-5", "Espresso Beans, 5 lb", "Dark roast espresso blend, whole bean, 5 lb bag", "54.00"),
    _product(
        "COF-HOUSE-LB", "House Blend Coffee (per lb)", "Medium roast house blend, sold by weight", "11.125", qty=_POUNDS
    ),
    _product("TEA-EARLGREY-100", "Earl Grey Tea Bags (100)", "Earl Grey black tea, box of 100 bags", "12.50"),
    _product(
        "PRD-AVOCADO-48",
        "Hass Avocados, case of 48",
        "Ripe Hass avocados, 48 count case",
        "62.00",
        taxable=False,
        qty=("1", "4", "1"),
    ),
    _product(
        "PRD-TOMATO-LB",
        "Roma Tomatoes (per lb)",
        "Vine-ripened Roma tomatoes, sold by weight",
        "1.4375",
        taxable=False,
        qty=_POUNDS,
    ),
    _product(
        "PRD-LEMON-EA",
        "Lemons (each)",
        "Fresh lemons, 115 count size",
        "0.3125",
        taxable=False,
        qty=("10", "200", "10"),
    ),
    _product(
        "PKG-CUP12-1000",
        "12 oz Hot Cups, 1000",
        "Double-wall 12 oz hot cups, sleeve of 1000",
        "84.00",
        qty=("1", "5", "1"),
    ),
    _product(
        "PKG-LID-1000",
        "Sip Lids, 1000",
        "Sip-through lids for 10-20 oz cups, sleeve of 1000",
        "39.99",
        qty=("1", "5", "1"),
    ),
    _product(
        "PKG-CAKEBOX-10",
        "Cake Box 10x10x5",
        "White cake box with window, 10x10x5 in.",
        "0.895",
        qty=("25", "250", "25"),
    ),
    _product("PKG-LABEL", "Product Labels", "Printed ingredient labels, per label", "0.125", qty=("500", "5000", "50")),
    _product(
        "PKG-NAPKIN-3000",
        "Dinner Napkins, case of 3000",
        "2-ply dinner napkins, case of 3000",
        "45.50",
        qty=("1", "3", "1"),
    ),
    _product(
        "PKG-STRAW-PAPER", "Paper Straws", "Compostable paper straws, per straw", "0.04125", qty=("100", "2000", "100")
    ),
    _product(
        "CLN-SANITIZER-GAL",
        "Food-Safe Sanitizer, 1 gal",
        "No-rinse food-contact sanitizer, gallon",
        "16.75",
        qty=("1", "6", "1"),
    ),
    _product("CLN-GLOVES-100", "Nitrile Gloves, box of 100", "Powder-free nitrile gloves, size L", "11.99"),
    _product("BEV-OJ-GAL", "Fresh Orange Juice, 1 gal", "Cold-pressed orange juice, gallon", "9.45"),
    _product(
        "BEV-SPARKLING-24", "Sparkling Water, case of 24", "Sparkling mineral water, 12 oz cans, case of 24", "21.60"
    ),
    _service("SVC-DELIVERY", "Standard Delivery", "Scheduled route delivery", "15.00"),
    _service("SVC-DELIVERY-RUSH", "Rush Delivery", "Same-day delivery outside the route schedule", "35.00"),
    _service("SVC-MILEAGE", "Delivery Mileage", "Off-route delivery, per mile", "0.655", qty=("5", "60", "0.1")),
    _service("SVC-FUEL", "Fuel Surcharge", "Fuel surcharge per delivery", "4.95"),
    _service(
        "SVC-CATERING-HR",
        "Catering Staff (per hour)",
        "Event service staff, per staff hour",
        "32.50",
        qty=("2", "40", "0.25"),
    ),
    _service("SVC-EVENT-SETUP", "Event Setup & Breakdown", "Setup and breakdown of event catering stations", "150.00"),
    _service(
        "SVC-ESPRESSO-RENT",
        "Espresso Machine Rental (per day)",
        "Two-group espresso machine, per day",
        "45.00",
        taxable=True,
        qty=("1", "7", "1"),
    ),
    _service("SVC-MAINTENANCE", "Equipment Maintenance Visit", "Preventive maintenance of coffee equipment", "95.00"),
    _service(
        "SVC-CONSULT-HR",
        "Menu Consulting (per hour)",
        "Menu and costing consultation",
        "120.00",
        qty=("0.5", "6", "0.25"),
    ),
    _service("SVC-BARISTA-TRAIN", "Barista Training Session", "Half-day barista training for up to 4 staff", "275.00"),
    _service("SVC-ROUTE-SUB", "Route Planning Subscription", "Standing-order route planning, monthly", "49.00"),
    _service("SVC-RESTOCK-FEE", "Restocking Fee", "Restocking fee on returned goods", "25.00"),
)
