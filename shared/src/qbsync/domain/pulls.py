"""What pull-sync's pulls (items, payment status, tax) share. Pure functions.

* Reading QuickBooks values exactly: money as ``Decimal`` (never float), references, ``MetaData`` times.
* A fingerprint of what was published, so an object is published again only when something Batchly sees changed
  (a save in QuickBooks that changes nothing visible is not news).
* The created / updated / deactivated decision for name-list objects (items, tax rates, tax codes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

__all__ = [
    "CENT",
    "Change",
    "Published",
    "date_of",
    "decimal_of",
    "fingerprint",
    "money_of",
    "plan_change",
    "ref_of",
    "updated_at",
]

CENT = Decimal("0.01")
Change = Literal["created", "updated", "deactivated"]


@dataclass(frozen=True, slots=True)
class Published:
    """What was last published about one QuickBooks object."""

    fingerprint: str
    #: As published: False after a deactivation (or when an inactive object was published on purpose).
    active: bool


def plan_change(
    *, eligible: bool, active: bool, fingerprint: str, previous: Published | None, include_inactive: bool
) -> Change | None:
    """Whether and how to tell Batchly about an object's current state.

    ``eligible``: the object is of a kind Batchly takes at all (an Inventory or Service item; any tax rate).
    Batchly only ever hears about an inactive object if it was told about it while active (then it hears
    "deactivated" once), unless ``include_inactive`` asks for inactive objects too. Nothing is repeated: an
    unchanged fingerprint is not news.
    """
    if previous is None:
        return "created" if eligible and (active or include_inactive) else None
    if not eligible:
        # It turned into something Batchly does not take (e.g. a Service item changed to NonInventory).
        return "deactivated" if previous.active else None
    if not active:
        if previous.active:
            return "deactivated"
        return "updated" if include_inactive and fingerprint != previous.fingerprint else None
    return "updated" if fingerprint != previous.fingerprint else None


def fingerprint(fields: Mapping[str, Any]) -> str:
    """A stable digest of the fields Batchly sees (values rendered as text, keys sorted)."""
    canonical = json.dumps({k: _text(v) for k, v in fields.items()}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _text(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # 12.5 and 12.50 are the same price
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_text(v) for v in value]
    return str(value)


def decimal_of(value: Any) -> Decimal | None:
    """An exact decimal from a QuickBooks JSON number (int, Decimal or numeric text); None when absent or not a
    number. The QBO client already parses fractions as ``Decimal``; ``str()`` keeps every digit of anything else."""
    if value is None or isinstance(value, bool):
        return None
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        return None
    return result if result.is_finite() else None


def money_of(value: Any) -> Decimal:
    """An amount to the cent (absent = 0). QuickBooks amounts are already cents; rounding only normalises ``12.5``."""
    amount = decimal_of(value)
    return (amount if amount is not None else Decimal(0)).quantize(CENT, rounding=ROUND_HALF_UP)


def ref_of(ref: Any) -> tuple[str | None, str | None]:
    """``{"value": "12", "name": "Visa"}`` -> ("12", "Visa"); anything else -> (None, None)."""
    if not isinstance(ref, Mapping):
        return None, None
    value, name = ref.get("value"), ref.get("name")
    return (
        str(value) if value not in (None, "") else None,
        str(name) if name not in (None, "") else None,
    )


def updated_at(row: Mapping[str, Any]) -> datetime | None:
    """``MetaData.LastUpdatedTime`` as an aware datetime (QuickBooks writes it with the company's offset)."""
    meta = row.get("MetaData")
    stamp = meta.get("LastUpdatedTime") if isinstance(meta, Mapping) else None
    if not isinstance(stamp, str):
        return None
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def date_of(value: Any) -> date | None:
    """A QuickBooks date (``"2026-03-31"``), or None."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
