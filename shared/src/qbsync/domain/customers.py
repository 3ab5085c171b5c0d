"""Customers, Batchly -> QuickBooks: pre-sync validation, the field mapping, and the sync decision. Pure functions.

The mapping is exactly the seed's "Data Mapped" table (§1): Display Name -> DisplayName, Company Name ->
CompanyName, Email -> PrimaryEmailAddr, Phone -> PrimaryPhone, Billing Address -> BillAddr, Active Status -> Active.
Nothing else is written, so an accountant's other edits in QuickBooks (terms, notes, ...) survive our updates.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from qbsync.contracts.batchly import Address, CustomerPayload

__all__ = [
    "CustomerDecision",
    "CustomerLink",
    "ValidationProblem",
    "converge_body",
    "customer_body",
    "decide",
    "fingerprint",
    "update_body",
    "validate_customer",
]

# QuickBooks' limits (facts §5; the emulator enforces the same).
DISPLAY_NAME_MAX = 500
COMPANY_NAME_MAX = 100
EMAIL_MAX = 100
PHONE_MAX = 30
ADDRESS_LIMITS = {
    "line1": 500,
    "line2": 500,
    "line3": 500,
    "city": 255,
    "region": 255,
    "postal_code": 30,
    "country": 255,
}
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_US_ZIP = re.compile(r"^\d{5}(-\d{4})?$")


@dataclass(frozen=True, slots=True)
class ValidationProblem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def validate_customer(customer: CustomerPayload) -> list[ValidationProblem]:
    """The seed's pre-sync customer checks plus QuickBooks' own rules; each problem names its field."""
    problems: list[ValidationProblem] = []
    name = customer.display_name.strip()
    if not name:
        problems.append(ValidationProblem("display_name", "must not be empty"))
    if ":" in customer.display_name:
        problems.append(
            ValidationProblem("display_name", "must not contain ':' (QuickBooks uses it for sub-customers)")
        )
    if len(name) > DISPLAY_NAME_MAX:
        problems.append(
            ValidationProblem("display_name", f"is {len(name)} characters; QuickBooks allows {DISPLAY_NAME_MAX}")
        )
    if _CONTROL.search(customer.display_name):
        problems.append(ValidationProblem("display_name", "must not contain control characters (tabs, line breaks)"))
    if customer.company_name and len(customer.company_name.strip()) > COMPANY_NAME_MAX:
        problems.append(ValidationProblem("company_name", f"is longer than QuickBooks' {COMPANY_NAME_MAX} characters"))
    if customer.email is not None and customer.email.strip():
        email = customer.email.strip()
        if len(email) > EMAIL_MAX:
            problems.append(ValidationProblem("email", f"is longer than QuickBooks' {EMAIL_MAX} characters"))
        elif not _EMAIL.match(email):
            problems.append(ValidationProblem("email", "is not a valid e-mail address"))
    if customer.phone and len(customer.phone.strip()) > PHONE_MAX:
        problems.append(ValidationProblem("phone", f"is longer than QuickBooks' {PHONE_MAX} characters"))
    if customer.billing_address is not None:
        problems.extend(_validate_address("billing_address", customer.billing_address))
    return problems


def _validate_address(prefix: str, address: Address) -> list[ValidationProblem]:
    problems: list[ValidationProblem] = []
    values = address.model_dump()
    if not any((values.get(k) or "").strip() for k in ADDRESS_LIMITS):
        return problems  # an empty address is "no address"
    if not (address.line1 or "").strip():
        problems.append(ValidationProblem(f"{prefix}.line1", "is required when an address is given"))
    if not (address.city or "").strip() and not (address.postal_code or "").strip():
        problems.append(ValidationProblem(f"{prefix}.city", "or a postal code is required when an address is given"))
    for key, maximum in ADDRESS_LIMITS.items():
        value = (values.get(key) or "").strip()
        if len(value) > maximum:
            problems.append(ValidationProblem(f"{prefix}.{key}", f"is longer than QuickBooks' {maximum} characters"))
    country = (address.country or "").strip().upper()
    postal = (address.postal_code or "").strip()
    if country in ("US", "USA", "UNITED STATES") and postal and not _US_ZIP.match(postal):
        problems.append(ValidationProblem(f"{prefix}.postal_code", "is not a US ZIP code (12345 or 12345-6789)"))
    return problems


def customer_body(customer: CustomerPayload) -> dict[str, Any]:
    """The QuickBooks Customer fields qbsync owns, with empty values left out (see :func:`update_body`)."""
    body: dict[str, Any] = {"DisplayName": customer.display_name.strip(), "Active": customer.active}
    if customer.company_name and customer.company_name.strip():
        body["CompanyName"] = customer.company_name.strip()
    if customer.email and customer.email.strip():
        body["PrimaryEmailAddr"] = {"Address": customer.email.strip()}
    if customer.phone and customer.phone.strip():
        body["PrimaryPhone"] = {"FreeFormNumber": customer.phone.strip()}
    address = customer.billing_address
    if address is not None:
        bill_addr = {
            target: value.strip()
            for source, target in _ADDRESS_FIELDS
            if (value := getattr(address, source)) and value.strip()
        }
        if bill_addr:
            body["BillAddr"] = bill_addr
    return body


_ADDRESS_FIELDS = (
    ("line1", "Line1"),
    ("line2", "Line2"),
    ("line3", "Line3"),
    ("city", "City"),
    ("region", "CountrySubDivisionCode"),
    ("postal_code", "PostalCode"),
    ("country", "Country"),
)
_CLEARED = {
    "CompanyName": "",
    "PrimaryEmailAddr": {"Address": ""},
    "PrimaryPhone": {"FreeFormNumber": ""},
}


def update_body(new: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """A sparse update that also clears what Batchly removed since the last push (an empty value clears a field)."""
    body = dict(new)
    if previous:
        body.update({key: cleared for key, cleared in _CLEARED.items() if key in previous and key not in new})
        if "BillAddr" in previous:
            old_address = previous["BillAddr"]
            address = dict(new.get("BillAddr", {}))
            for key in old_address:
                address.setdefault(key, "")
            body["BillAddr"] = address
    return body


def converge_body(new: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The sparse update that makes QuickBooks' ``current`` customer carry ``new`` for every field qbsync owns.

    For a customer linked rather than pushed (an earlier attempt's uncertain create, a pre-existing name or e-mail)
    nothing records what was last sent, so QuickBooks' own values stand in for it: a company name, e-mail, phone or
    address line Batchly no longer has is cleared, not left behind.
    """
    owned: dict[str, Any] = {key: current[key] for key in _CLEARED if key in current}
    if isinstance(current.get("BillAddr"), dict):
        lines = {target for _, target in _ADDRESS_FIELDS}
        owned["BillAddr"] = {key: value for key, value in current["BillAddr"].items() if key in lines}
    return update_body(new, owned)


def fingerprint(body: dict[str, Any]) -> str:
    """Stable hash of what was last pushed, to skip a QBO write when nothing qbsync owns changed."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CustomerLink:
    """What we know of a Batchly customer's QuickBooks twin."""

    qbo_id: str
    sync_token: str
    last_entity_version: int
    pushed_fingerprint: str | None
    linked: bool


@dataclass(frozen=True, slots=True)
class CustomerDecision:
    action: Literal["create", "update", "unchanged", "ignore"]
    reason: str = ""


def decide(*, link: CustomerLink | None, entity_version: int, body_fingerprint: str, force: bool) -> CustomerDecision:
    """What to do with a snapshot at ``entity_version`` given what was applied before (convergent, order-safe).

    Older snapshots are ignored; a snapshot for a customer never synced creates it (also an update); an unchanged
    snapshot skips the write. ``force`` ("Sync to QB") re-applies the same version but never an older one.
    """
    if link is not None:
        if entity_version < link.last_entity_version:
            return CustomerDecision(
                "ignore",
                f"stale snapshot: version {entity_version} is older than the applied {link.last_entity_version}",
            )
        if entity_version == link.last_entity_version and not force:
            return CustomerDecision("ignore", f"version {entity_version} is already applied")
        if link.pushed_fingerprint == body_fingerprint and not force:
            return CustomerDecision("unchanged", "no field qbsync syncs has changed")
        return CustomerDecision("update")
    return CustomerDecision("create")
