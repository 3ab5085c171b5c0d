"""Items, QuickBooks -> Batchly (seed §2), and the rare push of an item created in Batchly. Pure functions.

* Only Inventory ("Product") and Service items are synced — never NonInventory, Category or Group — and only active
  ones unless the organization's setting asks for inactive ones too. An item Batchly was told about that becomes
  inactive (or turns into a type Batchly does not take) is published once as "deactivated".
* Each QuickBooks item is matched to a Batchly item by SKU, then by Name (case- and space-insensitive); a key two
  Batchly items share matches neither, rather than picking one at random.
* Mapped fields (seed "Data Mapped"): Name, SKU, Description, Unit Price (Batchly's default price), Income Account
  (for reference), Active.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from qbsync.contracts.batchly import ItemPayload
from qbsync.domain.customers import ValidationProblem
from qbsync.domain.pulls import Change, Published, decimal_of, fingerprint, plan_change, ref_of, updated_at

__all__ = [
    "SYNCED_TYPES",
    "BatchlyItem",
    "Catalog",
    "Match",
    "QboItem",
    "item_fingerprint",
    "match_key",
    "new_item_body",
    "parse_item",
    "plan_item",
    "qbo_item_type",
    "validate_new_item",
]

SYNCED_TYPES = frozenset({"Inventory", "Service"})
Match = Literal["sku", "name", "none"]

# QuickBooks' limits for items (facts §5; the emulator enforces the same).
NAME_MAX = 100
SKU_MAX = 100
DESCRIPTION_MAX = 4000
_PRICE_PLACES = Decimal("0.00001")
_SPACE = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class QboItem:
    qbo_id: str
    name: str
    sku: str | None
    description: str | None
    unit_price: Decimal | None
    item_type: str
    income_account_id: str | None
    income_account_name: str | None
    active: bool
    last_updated: datetime | None

    @property
    def eligible(self) -> bool:
        """Of a type Batchly takes (Inventory or Service)."""
        return self.item_type in SYNCED_TYPES


def parse_item(row: Mapping[str, Any]) -> QboItem:
    account_id, account_name = ref_of(row.get("IncomeAccountRef"))
    return QboItem(
        qbo_id=str(row.get("Id")),
        name=str(row.get("Name") or ""),
        sku=_text(row.get("Sku")),
        description=_text(row.get("Description")),
        unit_price=_price(row.get("UnitPrice")),
        item_type=str(row.get("Type") or ""),
        income_account_id=account_id,
        income_account_name=account_name,
        active=row.get("Active") is not False,
        last_updated=updated_at(row),
    )


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _price(value: Any) -> Decimal | None:
    """QuickBooks' UnitPrice (up to 5 places). A negative price has no meaning as a Batchly default price: None."""
    price = decimal_of(value)
    if price is None or price < 0:
        return None
    return price.quantize(_PRICE_PLACES)


# ---- matching --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BatchlyItem:
    item_id: UUID
    name: str
    sku: str | None = None


def match_key(text: str | None) -> str | None:
    """The form SKUs and names are compared in: trimmed, inner spaces collapsed, case-folded."""
    if text is None:
        return None
    key = _SPACE.sub(" ", text).strip().casefold()
    return key or None


class Catalog:
    """Batchly's items of one organization, indexed for matching."""

    def __init__(self, items: Iterable[BatchlyItem]) -> None:
        self._by_sku: dict[str, set[UUID]] = defaultdict(set)
        self._by_name: dict[str, set[UUID]] = defaultdict(set)
        for item in items:
            if (sku := match_key(item.sku)) is not None:
                self._by_sku[sku].add(item.item_id)
            if (name := match_key(item.name)) is not None:
                self._by_name[name].add(item.item_id)

    def match(self, item: QboItem) -> tuple[UUID | None, Match]:
        """The Batchly item ``item`` is: by SKU first, then by Name; (None, "none") when neither is unique."""
        by_sku = self._unique(self._by_sku, item.sku)
        if by_sku is not None:
            return by_sku, "sku"
        by_name = self._unique(self._by_name, item.name)
        if by_name is not None:
            return by_name, "name"
        return None, "none"

    @staticmethod
    def _unique(index: Mapping[str, set[UUID]], text: str | None) -> UUID | None:
        key = match_key(text)
        found = index.get(key) if key is not None else None
        return next(iter(found)) if found is not None and len(found) == 1 else None


# ---- the decision ----------------------------------------------------------------------------------------------------
def qbo_item_type(item: QboItem, previous_type: str | None) -> Literal["Inventory", "Service"]:
    """The type to publish: the item's own, or (for an item that left the synced types) the last one published."""
    if item.item_type in SYNCED_TYPES:
        return item.item_type  # type: ignore[return-value]
    return "Inventory" if previous_type == "Inventory" else "Service"


def item_fingerprint(item: QboItem, batchly_item_id: UUID | None, match: Match, *, active: bool) -> str:
    """What Batchly sees of an item (the match included: learning which Batchly item it is, is news)."""
    return fingerprint(
        {
            "name": item.name,
            "sku": item.sku,
            "description": item.description,
            "unit_price": item.unit_price,
            "type": item.item_type if item.eligible else None,
            "income_account_id": item.income_account_id,
            "income_account_name": item.income_account_name,
            "active": active,
            "batchly_item_id": str(batchly_item_id) if batchly_item_id else None,
            "match": match,
        }
    )


def plan_item(
    item: QboItem, batchly_item_id: UUID | None, match: Match, previous: Published | None, *, include_inactive: bool
) -> tuple[Change | None, str, bool]:
    """(change, fingerprint, active as published) for an item's current state."""
    active = item.active and item.eligible
    digest = item_fingerprint(item, batchly_item_id, match, active=active)
    change = plan_change(
        eligible=item.eligible,
        active=item.active,
        fingerprint=digest,
        previous=previous,
        include_inactive=include_inactive,
    )
    return change, digest, active


# ---- the rare push: an item created in Batchly -----------------------------------------------------------------------
def validate_new_item(item: ItemPayload) -> list[ValidationProblem]:
    """QuickBooks' item rules, checked before anything is sent; each problem names its field."""
    problems: list[ValidationProblem] = []
    name = item.name.strip()
    if not name:
        problems.append(ValidationProblem("name", "must not be empty"))
    if ":" in item.name:
        problems.append(ValidationProblem("name", "must not contain ':' (QuickBooks uses it for sub-items)"))
    if len(name) > NAME_MAX:
        problems.append(ValidationProblem("name", f"is {len(name)} characters; QuickBooks allows {NAME_MAX}"))
    if _CONTROL.search(item.name):
        problems.append(ValidationProblem("name", "must not contain control characters (tabs, line breaks)"))
    if item.sku is not None and len(item.sku.strip()) > SKU_MAX:
        problems.append(ValidationProblem("sku", f"is longer than QuickBooks' {SKU_MAX} characters"))
    if item.description is not None and len(item.description) > DESCRIPTION_MAX:
        problems.append(ValidationProblem("description", f"is longer than QuickBooks' {DESCRIPTION_MAX} characters"))
    return problems


def new_item_body(
    item: ItemPayload,
    *,
    income_account_id: str,
    asset_account_id: str | None = None,
    expense_account_id: str | None = None,
    start_date: date | None = None,
) -> dict[str, Any]:
    """The QuickBooks Item for a Batchly item: a product becomes an Inventory item (which QuickBooks requires to
    carry asset and expense accounts, a start date and a quantity: 0 — Batchly does not track stock), a service a
    Service item."""
    body: dict[str, Any] = {
        "Name": item.name.strip(),
        "Type": "Inventory" if item.item_type == "product" else "Service",
        "UnitPrice": item.unit_price,
        "Taxable": item.taxable,
        "Active": item.active,
        "IncomeAccountRef": {"value": income_account_id},
    }
    if item.sku and item.sku.strip():
        body["Sku"] = item.sku.strip()
    if item.description:
        body["Description"] = item.description
    if body["Type"] == "Inventory":
        if asset_account_id is None or expense_account_id is None or start_date is None:
            raise ValueError("an Inventory item needs asset and expense accounts and a start date")
        body.update(
            AssetAccountRef={"value": asset_account_id},
            ExpenseAccountRef={"value": expense_account_id},
            TrackQtyOnHand=True,
            QtyOnHand=0,
            InvStartDate=start_date.isoformat(),
        )
    return body
