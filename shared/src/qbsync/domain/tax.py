"""Sales tax, QuickBooks -> Batchly (seed §5): tax rates and tax codes. Pure functions.

TaxRate and TaxCode are not in QuickBooks' change feed (facts §2), so every pull is a full refresh compared against
what was last published. Mapped (seed "Data Mapped"): rate name, percentage, agency (reference only); a code's
taxability and the rates it applies together (their sum is the code's total percentage).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from qbsync.domain.pulls import decimal_of, fingerprint, ref_of

__all__ = ["TaxCodeView", "TaxRateView", "parse_tax_code", "parse_tax_rate"]

_PERCENT_PLACES = Decimal("0.00001")


@dataclass(frozen=True, slots=True)
class TaxRateView:
    qbo_id: str
    name: str
    rate_percent: Decimal
    agency_name: str | None
    active: bool

    def fingerprint(self) -> str:
        return fingerprint(
            {"name": self.name, "rate": self.rate_percent, "agency": self.agency_name, "active": self.active}
        )


@dataclass(frozen=True, slots=True)
class TaxCodeView:
    qbo_id: str
    name: str
    taxable: bool
    rate_ids: tuple[str, ...]
    total_rate_percent: Decimal | None
    active: bool

    def fingerprint(self) -> str:
        return fingerprint(
            {
                "name": self.name,
                "taxable": self.taxable,
                "rates": list(self.rate_ids),
                "total": self.total_rate_percent,
                "active": self.active,
            }
        )


def parse_tax_rate(row: Mapping[str, Any], agency_names: Mapping[str, str]) -> TaxRateView | None:
    """A tax rate as Batchly sees it; None when its percentage is not a percentage (absent, negative, over 100)."""
    rate = decimal_of(row.get("RateValue"))
    if rate is None or not 0 <= rate <= 100:
        return None
    agency_id, agency_name = ref_of(row.get("AgencyRef"))
    return TaxRateView(
        qbo_id=str(row.get("Id")),
        name=str(row.get("Name") or ""),
        rate_percent=rate.quantize(_PERCENT_PLACES),
        agency_name=agency_name or (agency_names.get(agency_id) if agency_id else None),
        active=row.get("Active") is not False,
    )


def parse_tax_code(row: Mapping[str, Any], rates: Mapping[str, TaxRateView]) -> TaxCodeView:
    """A tax code with the sales rates it applies; the total is known only when every one of them is."""
    details = (row.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
    rate_ids = tuple(
        rid for d in details if isinstance(d, Mapping) and (rid := ref_of(d.get("TaxRateRef"))[0]) is not None
    )
    known = [rates[r].rate_percent for r in rate_ids if r in rates]
    total = sum(known, Decimal(0)).quantize(_PERCENT_PLACES) if len(known) == len(rate_ids) else None
    if total is not None and total > 100:
        total = None
    return TaxCodeView(
        qbo_id=str(row.get("Id")),
        name=str(row.get("Name") or ""),
        taxable=bool(row.get("Taxable", bool(rate_ids))),
        rate_ids=rate_ids,
        total_rate_percent=total,
        active=row.get("Active") is not False,
    )
