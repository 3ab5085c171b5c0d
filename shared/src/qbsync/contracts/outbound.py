"""Outbound and internal contracts: what qbsync publishes.

* Sync results (``qbsync.sync-results``): a status change at every step of an inbound event's life and exactly one
  terminal outcome — ``SyncCompleted``, ``SyncFailed`` or a ``SyncStatusChanged`` with status ``ignored`` — so Batchly
  can show the seed's badges (synced, pending, failed, retry available, not synced) without asking anyone.
* Pulled changes (``qbsync.changes``): what changed in QuickBooks, for Batchly to apply.
* Connections (``qbsync.connections``): ``QboConnected`` / ``QboConnectionLost`` from token-manager.
* Internal (``qbsync.pull-requests``, ``qbsync.webhooks``): work for pull-sync.

Results reuse the source event's ``entity_id`` and ``entity_version`` and set ``causation_id`` to its ``event_id``.
Their own ``event_id`` is derived deterministically from the source event and the step, so a result re-published
after a crash carries the same id and consumers de-duplicate it for free.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, StringConstraints

from qbsync import topics
from qbsync.contracts.envelope import ContractModel, Envelope
from qbsync.contracts.registry import event
from qbsync.contracts.types import LongText, Money, Rate, TaxPercent, Text

__all__ = [
    "EntityRef",
    "InvoiceNumberConflictDetected",
    "InvoiceNumberConflictPayload",
    "InvoicePaymentChanged",
    "InvoicePaymentPayload",
    "ItemChanged",
    "ItemChangedPayload",
    "PullKind",
    "PullRequested",
    "PullRequestedPayload",
    "QboConnected",
    "QboConnectedPayload",
    "QboConnectionLost",
    "QboConnectionLostPayload",
    "SyncCompleted",
    "SyncCompletedPayload",
    "SyncFailed",
    "SyncFailedPayload",
    "SyncStatus",
    "SyncStatusChanged",
    "SyncStatusPayload",
    "SyncWarning",
    "TaxCodeChanged",
    "TaxCodeChangedPayload",
    "TaxRateChanged",
    "TaxRateChangedPayload",
    "WebhookReceived",
    "WebhookReceivedPayload",
]

QboId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ServiceLabel = Annotated[str, StringConstraints(min_length=1, max_length=64)]
ErrorCode = Annotated[str, StringConstraints(max_length=64)]
SyncStatus = Literal["pending", "retrying", "parked", "completed", "failed", "ignored"]
ErrorClass = Literal["transient", "dependency", "auth_lost", "permanent", "malformed", "internal"]


class _ResultBase(ContractModel):
    service: ServiceLabel
    source_event_id: UUID
    source_event_type: Text
    entity_type: Text
    attempt: int = Field(ge=1)
    max_attempts: int = Field(ge=1)


# ---- sync results --------------------------------------------------------------------------------------------------
class SyncStatusPayload(_ResultBase):
    status: SyncStatus
    #: When the next automatic attempt is due (status retrying).
    next_attempt_at: AwareDatetime | None = None
    error_class: ErrorClass | None = None
    error_code: ErrorCode | None = None
    message: LongText | None = None


@event(topic=topics.QBSYNC_SYNC_RESULTS, entity_type="sync", direction="outbound")
class SyncStatusChanged(Envelope[SyncStatusPayload]):
    """A step in an inbound event's sync: retrying (with the next attempt time), parked, or ignored (with reason)."""

    event_type: Literal["SyncStatusChanged"]
    schema_version: Literal[1]


class SyncWarning(ContractModel):
    code: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    message: LongText


class SyncCompletedPayload(_ResultBase):
    #: What the sync did in QuickBooks.
    action: Literal["created", "updated", "linked", "voided", "applied", "unchanged"]
    qbo_id: QboId | None = None
    qbo_doc_number: Text | None = None
    #: e.g. a total mismatch found by post-sync verification (then ``needs_review`` is true).
    warnings: list[SyncWarning] = Field(default_factory=list, max_length=50)
    needs_review: bool = False


@event(topic=topics.QBSYNC_SYNC_RESULTS, entity_type="sync", direction="outbound")
class SyncCompleted(Envelope[SyncCompletedPayload]):
    """An inbound event reached QuickBooks; carries the QuickBooks id (and doc number) to store in Batchly."""

    event_type: Literal["SyncCompleted"]
    schema_version: Literal[1]


class SyncFailedPayload(_ResultBase):
    error_class: ErrorClass
    error_code: ErrorCode | None = None
    message: LongText
    #: What a person should do about it (the seed's troubleshooting resolution).
    hint: LongText | None = None
    #: The record is in the dead-letter topic and can be retried (replayed) by hand.
    manual_retry_available: bool = True
    dead_letter_topic: Text | None = None


@event(topic=topics.QBSYNC_SYNC_RESULTS, entity_type="sync", direction="outbound")
class SyncFailed(Envelope[SyncFailedPayload]):
    """An inbound event could not be synced: retries exhausted or a permanent error. It is in the dead-letter topic."""

    event_type: Literal["SyncFailed"]
    schema_version: Literal[1]


class InvoiceNumberConflictPayload(ContractModel):
    invoice_id: UUID
    invoice_number: Text
    conflicting_qbo_id: QboId
    #: max(QuickBooks DocNumber) + 1 — seed error 3: reset Batchly's counter to this.
    suggested_next_number: Text


@event(topic=topics.QBSYNC_SYNC_RESULTS, entity_type="invoice", direction="outbound")
class InvoiceNumberConflictDetected(Envelope[InvoiceNumberConflictPayload]):
    """QuickBooks already holds this invoice number for another invoice; suggests a counter reset."""

    event_type: Literal["InvoiceNumberConflictDetected"]
    schema_version: Literal[1]


# ---- pulled changes ------------------------------------------------------------------------------------------------
class ItemChangedPayload(ContractModel):
    change: Literal["created", "updated", "deactivated"]
    qbo_item_id: QboId
    name: Text
    sku: Text | None = None
    description: LongText | None = None
    unit_price: Rate | None = None
    qbo_item_type: Literal["Inventory", "Service"]
    income_account_id: QboId | None = None
    income_account_name: Text | None = None
    active: bool
    #: The Batchly item it matched (by SKU, then by name), if any.
    batchly_item_id: UUID | None = None
    match: Literal["sku", "name", "none"] = "none"
    qbo_last_updated: AwareDatetime


@event(topic=topics.QBSYNC_CHANGES, entity_type="item", direction="outbound")
class ItemChanged(Envelope[ItemChangedPayload]):
    """A QuickBooks item (Inventory or Service) was created, changed or deactivated."""

    event_type: Literal["ItemChanged"]
    schema_version: Literal[1]


class InvoicePaymentPayload(ContractModel):
    invoice_id: UUID
    qbo_invoice_id: QboId
    invoice_number: Text | None = None
    status: Literal["sent", "partial", "paid", "overdue", "cancelled"]
    total: Money
    amount_paid: Money
    amount_due: Money
    last_payment_date: date | None = None
    payment_method: Text | None = None
    qbo_last_updated: AwareDatetime


@event(topic=topics.QBSYNC_CHANGES, entity_type="invoice", direction="outbound")
class InvoicePaymentChanged(Envelope[InvoicePaymentPayload]):
    """An invoice's payment status changed in QuickBooks (payment, partial payment, refund, void)."""

    event_type: Literal["InvoicePaymentChanged"]
    schema_version: Literal[1]


class TaxRateChangedPayload(ContractModel):
    change: Literal["created", "updated", "deactivated"]
    qbo_tax_rate_id: QboId
    name: Text
    rate_percent: TaxPercent
    agency_name: Text | None = None
    active: bool


@event(topic=topics.QBSYNC_CHANGES, entity_type="tax_rate", direction="outbound")
class TaxRateChanged(Envelope[TaxRateChangedPayload]):
    """A QuickBooks sales tax rate was created, changed or deactivated."""

    event_type: Literal["TaxRateChanged"]
    schema_version: Literal[1]


class TaxCodeChangedPayload(ContractModel):
    change: Literal["created", "updated", "deactivated"]
    qbo_tax_code_id: QboId
    name: Text
    taxable: bool
    tax_rate_ids: list[QboId] = Field(default_factory=list, max_length=100)
    total_rate_percent: TaxPercent | None = None
    active: bool


@event(topic=topics.QBSYNC_CHANGES, entity_type="tax_code", direction="outbound")
class TaxCodeChanged(Envelope[TaxCodeChangedPayload]):
    """A QuickBooks tax code (a group of rates applied together) was created, changed or deactivated."""

    event_type: Literal["TaxCodeChanged"]
    schema_version: Literal[1]


# ---- connections ---------------------------------------------------------------------------------------------------
class QboConnectedPayload(ContractModel):
    realm_id: QboId
    company_name: Text | None = None
    environment: Literal["production", "sandbox", "emulator"]
    connected_at: AwareDatetime


@event(topic=topics.QBSYNC_CONNECTIONS, entity_type="connection", direction="outbound")
class QboConnected(Envelope[QboConnectedPayload]):
    """An organization is connected to its QuickBooks company (first connect or reconnect); parked work resumes."""

    event_type: Literal["QboConnected"]
    schema_version: Literal[1]


class QboConnectionLostPayload(ContractModel):
    realm_id: QboId | None = None
    reason: Literal["refresh_failed", "revoked", "disconnected", "expired"]
    message: Text
    lost_at: AwareDatetime


@event(topic=topics.QBSYNC_CONNECTIONS, entity_type="connection", direction="outbound")
class QboConnectionLost(Envelope[QboConnectionLostPayload]):
    """An organization must reconnect QuickBooks ("Reconnect QuickBooks" banner); its sync work parks."""

    event_type: Literal["QboConnectionLost"]
    schema_version: Literal[1]


# ---- internal ------------------------------------------------------------------------------------------------------
PullKind = Literal["items", "payments", "tax", "customers_flush", "reconcile"]


class EntityRef(ContractModel):
    entity: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    qbo_id: QboId
    operation: Annotated[str, StringConstraints(max_length=32)] | None = None


class PullRequestedPayload(ContractModel):
    kind: PullKind
    reason: Literal["schedule", "manual", "webhook", "reconcile"]
    #: incremental (change feed from the watermark), full (query paging) or targeted (only ``targets``).
    scope: Literal["incremental", "full", "targeted"] = "incremental"
    targets: list[EntityRef] = Field(default_factory=list, max_length=1_000)
    #: The schedule slot this run belongs to (exactly one run per organization per slot).
    slot: Text | None = None


@event(topic=topics.QBSYNC_PULL_REQUESTS, entity_type="pull", direction="internal")
class PullRequested(Envelope[PullRequestedPayload]):
    """Work for pull-sync: read QuickBooks and publish what changed."""

    event_type: Literal["PullRequested"]
    schema_version: Literal[1]


class WebhookReceivedPayload(ContractModel):
    realm_id: QboId
    format: Literal["legacy", "cloudevents"]
    notification_id: Text
    entities: list[EntityRef] = Field(min_length=1, max_length=1_000)
    received_at: AwareDatetime


@event(topic=topics.QBSYNC_WEBHOOKS, entity_type="webhook", direction="internal")
class WebhookReceived(Envelope[WebhookReceivedPayload]):
    """A verified QuickBooks webhook notification, durably queued before Intuit got its 200."""

    event_type: Literal["WebhookReceived"]
    schema_version: Literal[1]
