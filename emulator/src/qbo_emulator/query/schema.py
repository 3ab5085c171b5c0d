"""Which properties of which entities QBO lets a query filter and sort on, and how each is typed.

QBO accepts in WHERE / ORDERBY only the properties its reference marks *filterable*; anything else fails with
4001 ``QueryValidationError: property 'X' is not queryable`` — even real properties such as Vendor's
``PrimaryEmailAddr`` (quickbooks-ruby#403) or ``AcctNum`` (QuickBooks-V3-DotNET-SDK#163). The lists below follow
Intuit's reference as transcribed in the project's facts (``qbo-api-facts.md`` §2) plus the properties widely
used clients filter on (``DocNumber``, ``MetaData.LastUpdatedTime``); extend them here, in one place.

A property's :class:`FieldKind` decides how a row value and a literal are compared: a ``*Ref`` compares its
``.value`` (an Id), ``PrimaryEmailAddr`` its ``.Address``, dates and datetimes as dates and datetimes, amounts as
``Decimal``. Every entity also gets ``Id``, ``MetaData.CreateTime`` and ``MetaData.LastUpdatedTime``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "DEFAULT_CATALOG",
    "NAME_LIST_ENTITIES",
    "EntityCatalog",
    "EntitySchema",
    "FieldKind",
    "Property",
]


class FieldKind(enum.Enum):
    """How a property's values compare."""

    ID = "id"  # numeric strings compare as integers
    STRING = "string"
    NUMBER = "number"  # Decimal
    BOOL = "bool"
    DATE = "date"  # "2024-01-31"
    DATETIME = "datetime"  # "2024-01-31T10:00:00-08:00"
    REF = "ref"  # {"value": "<Id>", "name": ...}; compares the Id
    EMAIL = "email"  # {"Address": ...}; compares the address as a string


_KIND_PATH_SUFFIX: Final = {FieldKind.REF: ("value",), FieldKind.EMAIL: ("Address",)}


@dataclass(frozen=True, slots=True)
class Property:
    """A queryable property: its canonical ``name``, its ``kind`` and where its value sits in a row."""

    name: str
    kind: FieldKind
    path: tuple[str, ...]

    @classmethod
    def of(cls, name: str, kind: FieldKind) -> Property:
        return cls(name, kind, (*name.split("."), *_KIND_PATH_SUFFIX.get(kind, ())))


@dataclass(frozen=True, eq=False)
class EntitySchema:
    """One entity's queryable properties, looked up exactly or case-insensitively."""

    name: str
    properties: tuple[Property, ...]
    _exact: dict[str, Property] = field(init=False, repr=False)
    _folded: dict[str, Property] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_exact", {prop.name: prop for prop in self.properties})
        object.__setattr__(self, "_folded", {prop.name.casefold(): prop for prop in self.properties})

    def find(self, name: str, *, case_sensitive: bool) -> Property | None:
        """The property called ``name``; QBO itself accepts ``Metadata.LastUpdatedTime`` for ``MetaData…``."""
        if case_sensitive:
            return self._exact.get(name)
        return self._exact.get(name) or self._folded.get(name.casefold())


@dataclass(frozen=True, eq=False)
class EntityCatalog:
    """The queryable entities. Hashed by identity, so it can sit inside cached, hashable parse options."""

    entities: tuple[EntitySchema, ...]
    _exact: dict[str, EntitySchema] = field(init=False, repr=False)
    _folded: dict[str, EntitySchema] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_exact", {schema.name: schema for schema in self.entities})
        object.__setattr__(self, "_folded", {schema.name.casefold(): schema for schema in self.entities})

    def find(self, name: str, *, case_sensitive: bool) -> EntitySchema | None:
        if case_sensitive:
            return self._exact.get(name)
        return self._exact.get(name) or self._folded.get(name.casefold())

    def names(self) -> list[str]:
        return [schema.name for schema in self.entities]


_ID, _S, _N, _B = FieldKind.ID, FieldKind.STRING, FieldKind.NUMBER, FieldKind.BOOL
_D, _DT, _REF, _EMAIL = FieldKind.DATE, FieldKind.DATETIME, FieldKind.REF, FieldKind.EMAIL


def _entity(name: str, kinds: Mapping[str, FieldKind]) -> EntitySchema:
    common = {"Id": _ID, "MetaData.CreateTime": _DT, "MetaData.LastUpdatedTime": _DT}
    return EntitySchema(name, tuple(Property.of(prop, kind) for prop, kind in {**common, **kinds}.items()))


_PERSON: Final = {
    "DisplayName": _S,
    "GivenName": _S,
    "MiddleName": _S,
    "FamilyName": _S,
    "CompanyName": _S,
    "PrintOnCheckName": _S,
    "Active": _B,
}
_NAMED: Final = {"Name": _S, "Active": _B}
_SALES_TXN: Final = {"DocNumber": _S, "TxnDate": _D, "CustomerRef": _REF, "TotalAmt": _N}


def _entities() -> Iterable[EntitySchema]:
    yield _entity("Customer", {**_PERSON, "PrimaryEmailAddr": _EMAIL, "FullyQualifiedName": _S, "Balance": _N})
    yield _entity("Vendor", _PERSON)
    yield _entity("Employee", {**_PERSON, "EmployeeNumber": _S})
    yield _entity(
        "Item",
        {**_NAMED, "Sku": _S, "Type": _S, "FullyQualifiedName": _S, "UnitPrice": _N, "QtyOnHand": _N},
    )
    yield _entity(
        "Account",
        {
            **_NAMED,
            "AccountType": _S,
            "AccountSubType": _S,
            "Classification": _S,
            "FullyQualifiedName": _S,
            "CurrentBalance": _N,
        },
    )
    yield _entity("Term", _NAMED)
    yield _entity("TaxCode", {**_NAMED, "Taxable": _B})
    yield _entity("TaxRate", {**_NAMED, "RateValue": _N})
    yield _entity("PaymentMethod", {**_NAMED, "Type": _S})
    yield _entity("Class", {**_NAMED, "FullyQualifiedName": _S})
    yield _entity("Department", {**_NAMED, "FullyQualifiedName": _S})
    yield _entity("Invoice", {**_SALES_TXN, "DueDate": _D, "Balance": _N, "SalesTermRef": _REF})
    yield _entity("CreditMemo", {**_SALES_TXN, "Balance": _N})
    yield _entity("RefundReceipt", _SALES_TXN)
    yield _entity("SalesReceipt", _SALES_TXN)
    yield _entity("Estimate", {**_SALES_TXN, "ExpirationDate": _D})
    yield _entity("Payment", {"TxnDate": _D, "CustomerRef": _REF, "TotalAmt": _N, "PaymentRefNum": _S})
    yield _entity(
        "Bill", {"DocNumber": _S, "TxnDate": _D, "DueDate": _D, "VendorRef": _REF, "TotalAmt": _N, "Balance": _N}
    )
    yield _entity("CompanyInfo", {"CompanyName": _S})
    yield _entity("Preferences", {})


DEFAULT_CATALOG: Final = EntityCatalog(tuple(_entities()))

# Name-list entities: QBO returns only active rows unless the WHERE clause mentions ``Active``.
NAME_LIST_ENTITIES: Final = frozenset(
    {
        "Customer",
        "Vendor",
        "Employee",
        "Item",
        "Account",
        "Term",
        "TaxCode",
        "TaxRate",
        "PaymentMethod",
        "Class",
        "Department",
    }
)
