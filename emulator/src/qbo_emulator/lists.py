"""Name-list rules: Customer, Vendor, Employee, Item, Account, Term, PaymentMethod, TaxAgency.

Each builder turns the client's (already merged, already cleaned) fields into the row QBO would store, raising
QBO's fault for the first broken rule: DisplayName unique across customers/vendors/employees including inactive
ones (6240), no ``:`` in names, field lengths (2050), e-mail syntax (2210), required fields (2020), live
references (2500/610). Server-managed fields (Balance, FullyQualifiedName, Level…) are computed, never taken.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from qbo_emulator import errors
from qbo_emulator.context import WriteContext
from qbo_emulator.entities import BY_NAME, NAME_UNIQUE_GROUP
from qbo_emulator.errors import QboFault
from qbo_emulator.refs import filled_ref, ref_id, resolve_ref

__all__ = ["READ_ONLY", "build_list_row"]

Row = dict[str, Any]

READ_ONLY: Final[Mapping[str, frozenset[str]]] = {
    "Customer": frozenset({"Balance", "BalanceWithJobs", "FullyQualifiedName", "Level", "Job"}),
    "Vendor": frozenset({"Balance"}),
    "Item": frozenset({"FullyQualifiedName", "Level"}),
    "Account": frozenset({"FullyQualifiedName", "CurrentBalance", "CurrentBalanceWithSubAccounts"}),
}

_USD: Final = {"value": "USD", "name": "United States Dollar"}
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ADDRESS_LIMITS: Final = {
    "Line1": 500,
    "Line2": 500,
    "Line3": 500,
    "Line4": 500,
    "Line5": 500,
    "City": 255,
    "CountrySubDivisionCode": 255,
    "PostalCode": 30,
    "Country": 255,
}
_PERSON_PRINT_NAME_MAX: Final = 110
_US_PSEUDO_TAX_CODES: Final = frozenset({"TAX", "NON"})
_ITEM_TYPES: Final = frozenset({"Inventory", "NonInventory", "Service", "Group", "Category"})
_ACCOUNT_TYPES: Final = {
    "Income": "Revenue",
    "Other Income": "Revenue",
    "Expense": "Expense",
    "Other Expense": "Expense",
    "Cost of Goods Sold": "Expense",
    "Bank": "Asset",
    "Accounts Receivable": "Asset",
    "Other Current Asset": "Asset",
    "Fixed Asset": "Asset",
    "Other Asset": "Asset",
    "Accounts Payable": "Liability",
    "Credit Card": "Liability",
    "Other Current Liability": "Liability",
    "Long Term Liability": "Liability",
    "Equity": "Equity",
}
_SUBTYPE_TO_TYPE: Final = {
    "SalesOfProductIncome": "Income",
    "ServiceFeeIncome": "Income",
    "AccountsReceivable": "Accounts Receivable",
    "UndepositedFunds": "Other Current Asset",
    "Inventory": "Other Current Asset",
    "SuppliesMaterialsCogs": "Cost of Goods Sold",
    "Checking": "Bank",
    "Savings": "Bank",
    "SalesTaxPayable": "Other Current Liability",
    "AccountsPayable": "Accounts Payable",
}


def check_lengths(fields: Row, limits: Mapping[str, int], prefix: str = "") -> None:
    """2050 for the first string longer than its limit (limits in characters, as QBO counts them)."""
    for name, maximum in limits.items():
        value = fields.get(name)
        if isinstance(value, str) and len(value) > maximum:
            raise errors.string_length(f"{prefix}{name}", maximum, len(value))


def _check_addresses(ctx: WriteContext, row: Row, *names: str) -> None:
    for name in names:
        address = row.get(name)
        if isinstance(address, dict):
            check_lengths(address, _ADDRESS_LIMITS, f"{name}.")
            if "Id" not in address:
                address["Id"] = ctx.company.next_value("PhysicalAddress")


def _check_contacts(row: Row) -> None:
    email = row.get("PrimaryEmailAddr")
    if isinstance(email, dict) and isinstance(email.get("Address"), str):
        address = email["Address"]
        check_lengths(email, {"Address": 100}, "PrimaryEmailAddr.")
        if not all(_EMAIL.match(part.strip()) for part in address.split(",")):
            raise QboFault(
                "2210",
                "Email Address does not conform to the syntax rules of RFC 822",
                "Email Address does not conform to the syntax rules of RFC 822.",
                "PrimaryEmailAddr.Address",
            )
    for phone in ("PrimaryPhone", "Mobile", "Fax", "AlternatePhone"):
        if isinstance(row.get(phone), dict):
            check_lengths(row[phone], {"FreeFormNumber": 30}, f"{phone}.")


def _no_colon(name: str, element: str) -> None:
    if ":" in name:
        raise errors.validation(f"The {element} cannot contain a colon (:).", element)


def _claim_name(ctx: WriteContext, entity: str, name: str, old: Row | None, detail_noun: str) -> None:
    holder = ctx.company.name_holder(ctx.company.name_key(entity, name))
    if holder is not None and (old is None or holder != (entity, old["Id"])):
        fault = errors.duplicate_name()
        if entity not in NAME_UNIQUE_GROUP:
            fault.detail = (
                f"The name supplied already exists. : Another {detail_noun} is already using this name. "
                "Please use a different name."
            )
        raise fault


def _display_name(row: Row) -> str:
    if row.get("DisplayName"):
        return str(row["DisplayName"])
    parts = [row.get(k) for k in ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")]
    derived = " ".join(str(p) for p in parts if p)
    if not derived:
        derived = str(row.get("CompanyName") or "")
    if not derived:
        raise QboFault(
            "6080",
            "No Name Provided",
            "Title, GivenName, MiddleName, FamilyName, DisplayName, Suffix - one of these must be non-empty",
            "DisplayName",
        )
    return derived


def _person(ctx: WriteContext, entity: str, row: Row, old: Row | None) -> Row:
    row["DisplayName"] = _display_name(row)
    check_lengths(row, BY_NAME[entity].string_limits or {})
    _no_colon(row["DisplayName"], "DisplayName")
    _claim_name(ctx, entity, row["DisplayName"], old, "customer, vendor or employee")
    _check_contacts(row)
    _check_addresses(ctx, row, "BillAddr", "ShipAddr", "PrimaryAddr")
    row.setdefault("Active", True)
    # QBO fills PrintOnCheckName from the name; cut to its own limit so a round trip of the row validates.
    row.setdefault("PrintOnCheckName", row["DisplayName"][:_PERSON_PRINT_NAME_MAX])
    if entity == "Employee":
        return row
    row["CurrencyRef"] = dict(_USD)
    row["Balance"] = (old or {}).get("Balance", 0)
    for ref_field, target in (("SalesTermRef", "Term"), ("PaymentMethodRef", "PaymentMethod")):
        if ref_field in row:
            row[ref_field] = filled_ref(target, resolve_ref(ctx, target, row[ref_field], ref_field))
    if entity == "Customer":
        _customer_extras(ctx, row, old)
    return row


def _customer_extras(ctx: WriteContext, row: Row, old: Row | None) -> None:
    row["BalanceWithJobs"] = (old or {}).get("BalanceWithJobs", row["Balance"])
    row.setdefault("Taxable", True)
    row.setdefault("BillWithParent", False)
    row.setdefault("PreferredDeliveryMethod", "Print")
    if "DefaultTaxCodeRef" in row and ref_id(row["DefaultTaxCodeRef"]) not in _US_PSEUDO_TAX_CODES:
        code = resolve_ref(ctx, "TaxCode", row["DefaultTaxCodeRef"], "DefaultTaxCodeRef")
        row["DefaultTaxCodeRef"] = filled_ref("TaxCode", code)
    parent_ref = row.get("ParentRef")
    if parent_ref:
        parent = resolve_ref(ctx, "Customer", parent_ref, "ParentRef")
        level = int(parent.get("Level", 0)) + 1
        if level > 5 or (old is not None and parent["Id"] == old["Id"]):
            raise errors.validation("Sub-customers can be nested at most 5 levels deep.", "ParentRef")
        row.update(ParentRef=filled_ref("Customer", parent), Job=True, Level=level)
        row["FullyQualifiedName"] = f"{parent['FullyQualifiedName']}:{row['DisplayName']}"
    else:
        row.update(Job=False, Level=0, FullyQualifiedName=row["DisplayName"])


def _item(ctx: WriteContext, row: Row, old: Row | None) -> Row:
    name = _required_name(row, "Name")
    check_lengths(row, BY_NAME["Item"].string_limits or {})
    item_type = row.setdefault("Type", "Service")
    if item_type not in _ITEM_TYPES:
        raise QboFault("2170", "Invalid Enumeration", f"Invalid Enumeration : {item_type}", "Type")
    row["FullyQualifiedName"], row["Level"] = name, 0
    if row.get("ParentRef"):
        parent = resolve_ref(ctx, "Item", row["ParentRef"], "ParentRef")
        row["ParentRef"] = filled_ref("Item", parent)
        row["FullyQualifiedName"] = f"{parent['FullyQualifiedName']}:{name}"
        row["Level"], row["SubItem"] = int(parent.get("Level", 0)) + 1, True
    _claim_name(ctx, "Item", row["FullyQualifiedName"], old, "product or service")
    required: tuple[str, ...] = ()
    if item_type in {"Service", "NonInventory"}:
        required = ("IncomeAccountRef",)
    elif item_type == "Inventory":
        required = ("IncomeAccountRef", "AssetAccountRef", "ExpenseAccountRef", "QtyOnHand", "InvStartDate")
        row["TrackQtyOnHand"] = True
    for element in required:
        if element not in row:
            raise errors.required_param(element)
    for ref_field in ("IncomeAccountRef", "AssetAccountRef", "ExpenseAccountRef"):
        if ref_field in row:
            row[ref_field] = filled_ref("Account", resolve_ref(ctx, "Account", row[ref_field], ref_field))
    for key, default in (("Active", True), ("Taxable", False), ("SalesTaxIncluded", False), ("SubItem", False)):
        row.setdefault(key, default)
    if item_type not in {"Category", "Group"}:
        row.setdefault("UnitPrice", 0)
        row.setdefault("PurchaseCost", 0)
        row.setdefault("TrackQtyOnHand", False)
    return row


def _account(ctx: WriteContext, row: Row, old: Row | None) -> Row:
    name = _required_name(row, "Name")
    check_lengths(row, BY_NAME["Account"].string_limits or {})
    _claim_name(ctx, "Account", name, old, "account")
    if "AccountType" not in row and row.get("AccountSubType") in _SUBTYPE_TO_TYPE:
        row["AccountType"] = _SUBTYPE_TO_TYPE[row["AccountSubType"]]
    if row.get("AccountType") not in _ACCOUNT_TYPES:
        raise QboFault(
            "6010",
            "Invalid Account.AccountType && Account.SubType",
            "Either an Account.AccountType or an Account.AccountSubType must be specified",
            "AccountType",
        )
    row["Classification"] = _ACCOUNT_TYPES[row["AccountType"]]
    row["FullyQualifiedName"] = name
    row.setdefault("Active", True)
    row.setdefault("SubAccount", False)
    row["CurrentBalance"] = (old or {}).get("CurrentBalance", 0)
    row["CurrentBalanceWithSubAccounts"] = row["CurrentBalance"]
    row["CurrencyRef"] = dict(_USD)
    return row


def _simple(defaults: Mapping[str, Any], noun: str, name_field: str = "Name") -> Callable[..., Row]:
    def build(ctx: WriteContext, row: Row, old: Row | None, entity: str) -> Row:
        name = _required_name(row, name_field)
        check_lengths(row, BY_NAME[entity].string_limits or {})
        _claim_name(ctx, entity, name, old, noun)
        for key, value in defaults.items():
            row.setdefault(key, value)
        return row

    return build


def _required_name(row: Row, field_name: str) -> str:
    value = row.get(field_name)
    if not isinstance(value, str) or not value.strip():
        raise errors.required_param(field_name)
    _no_colon(value, field_name)
    return value


_SIMPLE: Final = {
    "Term": _simple({"Active": True, "Type": "STANDARD", "DueDays": 0, "DiscountPercent": 0}, "term"),
    "PaymentMethod": _simple({"Active": True, "Type": "NON_CREDIT_CARD"}, "payment method"),
    "TaxAgency": _simple(
        {"TaxTrackedOnSales": True, "TaxTrackedOnPurchases": False}, "tax agency", name_field="DisplayName"
    ),
}


def build_list_row(ctx: WriteContext, entity: str, fields: Row, old: Row | None) -> Row:
    """The stored form of a name-list object from the client's fields (``old`` on update)."""
    row = {k: v for k, v in fields.items() if k not in READ_ONLY.get(entity, ())}
    if entity in NAME_UNIQUE_GROUP:
        return _person(ctx, entity, row, old)
    if entity == "Item":
        return _item(ctx, row, old)
    if entity == "Account":
        return _account(ctx, row, old)
    return _SIMPLE[entity](ctx, row, old, entity)
