"""The entity catalogue: which QBO objects exist here and what each one allows (facts §2 URL table, §5).

Kinds decide the shared rules: *name* lists (Customer, Item, …) are deactivated, never deleted; *transactions*
(Invoice, Payment, …) share one Id sequence, carry DocNumbers and may be deleted; *read-only* lists (TaxCode,
TaxRate) are created only through ``/taxservice/taxcode``; *singletons* (CompanyInfo, Preferences) have one row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "BY_NAME",
    "BY_PATH",
    "NAME_UNIQUE_GROUP",
    "EntitySpec",
    "Kind",
    "spec_for_name",
]

Kind = Literal["name", "txn", "readonly", "singleton"]


@dataclass(frozen=True)
class EntitySpec:
    """What one entity type supports."""

    name: str
    kind: Kind
    void: Literal["operation", "include", None] = None
    """``operation``: ``?operation=void`` (Invoice); ``include``: ``?operation=update&include=void`` (Payment)."""
    cdc: bool = True
    webhook: bool = False
    docnumber: bool = False
    string_limits: Mapping[str, int] | None = None

    @property
    def path(self) -> str:
        """The lowercase URL segment (``/v3/company/{r}/invoice``)."""
        return self.name.lower()

    @property
    def deletable(self) -> bool:
        return self.kind == "txn"


_PERSON_LIMITS: Final = {
    "Title": 16,
    "GivenName": 100,
    "MiddleName": 100,
    "FamilyName": 100,
    "Suffix": 16,
    "DisplayName": 500,
    "CompanyName": 100,
    "PrintOnCheckName": 110,
    "Notes": 2000,
}
_TXN_LIMITS: Final = {"PrivateNote": 4000}

_SPECS: Final = (
    EntitySpec("Customer", "name", webhook=True, string_limits=_PERSON_LIMITS),
    EntitySpec("Vendor", "name", webhook=True, string_limits=_PERSON_LIMITS),
    EntitySpec("Employee", "name", webhook=True, string_limits=_PERSON_LIMITS),
    EntitySpec("Item", "name", webhook=True, string_limits={"Name": 100, "Description": 4000, "Sku": 100}),
    EntitySpec("Account", "name", webhook=True, string_limits={"Name": 100, "Description": 100}),
    EntitySpec("Term", "name", string_limits={"Name": 31}),
    EntitySpec("PaymentMethod", "name", string_limits={"Name": 31}),
    EntitySpec("TaxAgency", "name", cdc=False, string_limits={"DisplayName": 100}),
    EntitySpec("TaxCode", "readonly", cdc=False),
    EntitySpec("TaxRate", "readonly", cdc=False),
    EntitySpec("Invoice", "txn", void="operation", webhook=True, docnumber=True, string_limits=_TXN_LIMITS),
    EntitySpec("Payment", "txn", void="include", webhook=True, string_limits=_TXN_LIMITS),
    EntitySpec("CreditMemo", "txn", webhook=True, docnumber=True, string_limits=_TXN_LIMITS),
    EntitySpec("RefundReceipt", "txn", webhook=True, docnumber=True, string_limits=_TXN_LIMITS),
    EntitySpec("CompanyInfo", "singleton", cdc=False),
    EntitySpec("Preferences", "singleton", cdc=True),
)

BY_NAME: Final[Mapping[str, EntitySpec]] = {s.name: s for s in _SPECS}
BY_PATH: Final[Mapping[str, EntitySpec]] = {s.path: s for s in _SPECS}

NAME_UNIQUE_GROUP: Final = frozenset({"Customer", "Vendor", "Employee"})
"""DisplayName is unique across these three lists together (6240), inactive rows included."""


def spec_for_name(name: str) -> EntitySpec | None:
    """The spec for an entity name as written in queries and CDC (case-sensitive, like QBO)."""
    return BY_NAME.get(name)
