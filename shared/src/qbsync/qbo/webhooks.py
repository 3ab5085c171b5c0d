"""Webhook signature verification and payload normalisation, for both of Intuit's formats.

Intuit signs the raw request body: ``intuit-signature = base64(HMAC-SHA256(verifier_token, body))``, the same in
the legacy ``eventNotifications`` format and the CloudEvents format (a JSON array). Verify against the exact bytes
received - re-serialised JSON would not match - and compare in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["WebhookEvent", "WebhookPayloadError", "parse_webhook", "sign_webhook", "verify_webhook_signature"]

_ENTITY_NAMES = {
    name.lower(): name
    for name in (
        "Account", "Bill", "BillPayment", "Budget", "Class", "CreditMemo", "Currency", "Customer", "Department",
        "Deposit", "Employee", "Estimate", "Invoice", "Item", "JournalCode", "JournalEntry", "Payment",
        "PaymentMethod", "Preferences", "Purchase", "PurchaseOrder", "RefundReceipt", "SalesReceipt", "TaxAgency",
        "Term", "TimeActivity", "Transfer", "Vendor", "VendorCredit",
    )
}  # fmt: skip
_CLOUD_OPERATIONS = {
    "created": "Create",
    "updated": "Update",
    "deleted": "Delete",
    "voided": "Void",
    "merged": "Merge",
    "emailed": "Emailed",
}


class WebhookPayloadError(ValueError):
    """The body is not a webhook payload in either known format."""


@dataclass(frozen=True)
class WebhookEvent:
    """One change notification, whichever format carried it. ``operation`` uses the legacy words (Create, ...)."""

    realm_id: str
    entity: str
    entity_id: str
    operation: str
    occurred_at: str | None
    deleted_id: str | None = None
    event_id: str | None = None


def sign_webhook(body: bytes, verifier_token: str) -> str:
    """The ``intuit-signature`` value Intuit would send for ``body``."""
    digest = hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_webhook_signature(body: bytes, signature: str | None, verifier_token: str) -> bool:
    """Whether ``signature`` (the ``intuit-signature`` header) is Intuit's HMAC of the raw ``body``."""
    if not signature or not verifier_token:
        return False
    try:
        received = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
    return hmac.compare_digest(received, expected)


def parse_webhook(body: bytes) -> list[WebhookEvent]:
    """Normalise a legacy (``{"eventNotifications": [...]}``) or CloudEvents (``[{...}]``) body into events."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookPayloadError("webhook body is not JSON") from exc
    if isinstance(payload, list):
        return [_cloud_event(item) for item in payload]
    if isinstance(payload, dict) and isinstance(payload.get("eventNotifications"), list):
        return [event for note in payload["eventNotifications"] for event in _legacy_notification(note)]
    raise WebhookPayloadError("webhook body is neither the legacy nor the CloudEvents format")


def _legacy_notification(note: Any) -> list[WebhookEvent]:
    if not isinstance(note, dict) or not isinstance(note.get("dataChangeEvent"), dict):
        raise WebhookPayloadError("eventNotification without dataChangeEvent")
    realm = _required(note, "realmId")
    entities = note["dataChangeEvent"].get("entities")
    if not isinstance(entities, list):
        raise WebhookPayloadError("dataChangeEvent without entities")
    events = []
    for entity in entities:
        if not isinstance(entity, dict):
            raise WebhookPayloadError("entity change is not an object")
        events.append(
            WebhookEvent(
                realm_id=realm,
                entity=_canonical_entity(_required(entity, "name")),
                entity_id=_required(entity, "id"),
                operation=_required(entity, "operation"),
                occurred_at=_optional(entity, "lastUpdated"),
                deleted_id=_optional(entity, "deletedId"),
            )
        )
    return events


def _cloud_event(item: Any) -> WebhookEvent:
    if not isinstance(item, dict):
        raise WebhookPayloadError("CloudEvent is not an object")
    kind = _required(item, "type")  # e.g. "qbo.invoice.created.v1"
    parts = kind.split(".")
    if len(parts) < 3 or parts[0] != "qbo":
        raise WebhookPayloadError(f"unknown CloudEvent type {kind!r}")
    data = item.get("data")
    if not isinstance(data, dict):
        data = {}
    return WebhookEvent(
        realm_id=_required(item, "intuitaccountid"),
        entity=_canonical_entity(parts[1]),
        entity_id=_required(item, "intuitentityid"),
        operation=_CLOUD_OPERATIONS.get(parts[2].lower(), parts[2].capitalize()),
        occurred_at=_optional(item, "time"),
        deleted_id=_optional(data, "deletedId"),
        event_id=_optional(item, "id"),
    )


def _canonical_entity(name: str) -> str:
    return _ENTITY_NAMES.get(name.lower(), name[:1].upper() + name[1:])


def _required(mapping: dict[str, Any], key: str) -> str:
    value = mapping.get(key)
    if value is None or str(value) == "":
        raise WebhookPayloadError(f"webhook field {key!r} is missing")
    return str(value)


def _optional(mapping: dict[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    return None if value is None else str(value)
