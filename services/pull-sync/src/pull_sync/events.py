"""The events pull-sync publishes, with deterministic ids.

An id is derived from what the event says (organization, object, version, content), never drawn at random: a pull
repeated after a crash, or the same change reached by a webhook and by the nightly run, publishes the same id
again and Batchly's de-duplication absorbs it. ``entity_version`` follows QuickBooks' ``LastUpdatedTime`` (in
milliseconds) and always moves forward per object, so Batchly can ignore a stale snapshot.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from qbsync.contracts.batchly import FlushCustomerUpdatesRequested, SyncScopePayload
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.outbound import (
    EntityRef,
    InvoicePaymentChanged,
    InvoicePaymentPayload,
    ItemChanged,
    ItemChangedPayload,
    PullKind,
    PullRequested,
    PullRequestedPayload,
    TaxCodeChanged,
    TaxCodeChangedPayload,
    TaxRateChanged,
    TaxRateChangedPayload,
)

__all__ = [
    "customer_flush",
    "entity_uuid",
    "invoice_payment_changed",
    "item_changed",
    "late_link_pull",
    "next_version",
    "scheduled_pull",
    "slot_event_id",
    "tax_code_changed",
    "tax_rate_changed",
]

_NAMESPACE = uuid.UUID("b7f0d7a4-5d9e-4a59-9c55-8f1b2f6e0c3d")


def entity_uuid(org: UUID, kind: str, qbo_id: str) -> UUID:
    """The stable envelope ``entity_id`` of a QuickBooks object that has no Batchly id."""
    return uuid.uuid5(_NAMESPACE, f"{org}:{kind}:{qbo_id}")


def next_version(previous: int | None, changed_at: datetime | None, now: datetime) -> int:
    """QuickBooks' change time in ms (``now`` when unknown), and always past the previously published version."""
    stamp = int((changed_at or now).timestamp() * 1000)
    return stamp if previous is None else max(stamp, previous + 1)


def _event_id(org: UUID, kind: str, key: str, version: int, digest: str) -> UUID:
    return uuid.uuid5(_NAMESPACE, f"{org}:{kind}:{key}:{version}:{digest}")


def _common(
    org: UUID, entity_id: UUID, version: int, occurred_at: datetime, cause: AnyEnvelope | None
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "occurred_at": occurred_at,
        "organization_id": org,
        "entity_id": entity_id,
        "entity_version": version,
        "correlation_id": (cause.correlation_id or cause.event_id) if cause else None,
        "causation_id": cause.event_id if cause else None,
    }


def item_changed(
    org: UUID, payload: ItemChangedPayload, *, version: int, digest: str, cause: AnyEnvelope | None
) -> ItemChanged:
    return ItemChanged(
        event_id=_event_id(org, "item", payload.qbo_item_id, version, digest),
        event_type="ItemChanged",
        payload=payload,
        **_common(org, entity_uuid(org, "item", payload.qbo_item_id), version, payload.qbo_last_updated, cause),
    )


def invoice_payment_changed(
    org: UUID,
    payload: InvoicePaymentPayload,
    *,
    version: int,
    digest: str,
    occurred_at: datetime,
    cause: AnyEnvelope | None,
) -> InvoicePaymentChanged:
    return InvoicePaymentChanged(
        event_id=_event_id(org, "invoice", payload.qbo_invoice_id, version, digest),
        event_type="InvoicePaymentChanged",
        payload=payload,
        **_common(org, payload.invoice_id, version, occurred_at, cause),
    )


def tax_rate_changed(
    org: UUID,
    payload: TaxRateChangedPayload,
    *,
    version: int,
    digest: str,
    occurred_at: datetime,
    cause: AnyEnvelope | None,
) -> TaxRateChanged:
    return TaxRateChanged(
        event_id=_event_id(org, "tax_rate", payload.qbo_tax_rate_id, version, digest),
        event_type="TaxRateChanged",
        payload=payload,
        **_common(org, entity_uuid(org, "tax_rate", payload.qbo_tax_rate_id), version, occurred_at, cause),
    )


def tax_code_changed(
    org: UUID,
    payload: TaxCodeChangedPayload,
    *,
    version: int,
    digest: str,
    occurred_at: datetime,
    cause: AnyEnvelope | None,
) -> TaxCodeChanged:
    return TaxCodeChanged(
        event_id=_event_id(org, "tax_code", payload.qbo_tax_code_id, version, digest),
        event_type="TaxCodeChanged",
        payload=payload,
        **_common(org, entity_uuid(org, "tax_code", payload.qbo_tax_code_id), version, occurred_at, cause),
    )


def scheduled_pull(org: UUID, *, kind: PullKind, slot: str, event_id: UUID, fire_at: datetime) -> PullRequested:
    """The work of one schedule slot; its id is the claim's, so a re-published slot is the same event."""
    return PullRequested(
        event_id=event_id,
        event_type="PullRequested",
        payload=PullRequestedPayload(kind=kind, reason="schedule", scope="incremental", slot=slot),
        **_common(org, org, int(fire_at.timestamp() * 1000), fire_at, None),
    )


def late_link_pull(org: UUID, *, qbo_invoice_id: str, cause: AnyEnvelope, occurred_at: datetime) -> PullRequested:
    """A payment read of one invoice whose link was learnt after a payment run had already passed it by (the run
    read the links before invoice-sync's result arrived); its id follows the result, so a redelivery is the same."""
    return PullRequested(
        event_id=uuid.uuid5(_NAMESPACE, f"{org}:late-link:{cause.event_id}"),
        event_type="PullRequested",
        payload=PullRequestedPayload(
            kind="payments",
            reason="reconcile",
            scope="targeted",
            targets=[EntityRef(entity="Invoice", qbo_id=qbo_invoice_id)],
        ),
        **_common(org, org, int(occurred_at.timestamp() * 1000), occurred_at, cause),
    )


def slot_event_id(org: UUID, slot: str) -> UUID:
    return uuid.uuid5(_NAMESPACE, f"{org}:slot:{slot}")


def customer_flush(cause: PullRequested, *, occurred_at: datetime) -> FlushCustomerUpdatesRequested:
    """The 3 AM customer-update flush, addressed to customer-sync (one per slot: the id follows the slot's)."""
    return FlushCustomerUpdatesRequested(
        event_id=uuid.uuid5(_NAMESPACE, f"{cause.event_id}:flush"),
        event_type="FlushCustomerUpdatesRequested",
        payload=SyncScopePayload(requested_by="scheduler"),
        **_common(cause.organization_id, cause.organization_id, cause.entity_version, occurred_at, cause),
    )
