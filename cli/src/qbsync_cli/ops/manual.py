"""Manual syncs (the seed's "Sync Customers / Items / Invoices / Payments / Tax Now" buttons) as command events.

The CLI publishes the same command Batchly's UI publishes on ``batchly.commands``, keyed by the organization; the
service that owns the command answers on ``qbsync.sync-results`` like for any event.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from qbsync.contracts.batchly import (
    PullSyncRequestedPayload,
    SyncAllCustomersRequested,
    SyncAllUnsentInvoicesRequested,
    SyncItemsRequested,
    SyncPaymentsRequested,
    SyncScopePayload,
    SyncTaxRequested,
)
from qbsync.contracts.envelope import AnyEnvelope

__all__ = ["SYNC_KINDS", "SyncKind", "command_for", "owner_of"]

SyncKind = Literal["customers", "items", "invoices", "payments", "tax"]
SYNC_KINDS: tuple[SyncKind, ...] = ("customers", "items", "invoices", "payments", "tax")

_OWNERS: dict[SyncKind, str] = {
    "customers": "customer-sync",
    "items": "pull-sync",
    "invoices": "invoice-sync",
    "payments": "pull-sync",
    "tax": "pull-sync",
}


def owner_of(kind: SyncKind) -> str:
    """The service that carries out (and answers) a manual sync of ``kind``."""
    return _OWNERS[kind]


def command_for(
    kind: SyncKind,
    organization_id: UUID,
    *,
    everything: bool = False,
    requested_by: str = "qbsync-cli",
    now: datetime | None = None,
) -> AnyEnvelope:
    """The command event for a manual sync. ``everything``: all customers/invoices, or a full reload of pulls."""
    moment = now or datetime.now(UTC)
    common = {
        "event_id": uuid.uuid4(),
        "schema_version": 1,
        "occurred_at": moment,
        "organization_id": organization_id,
        # Commands are about the organization; the version only has to grow, so it is the time in milliseconds.
        "entity_id": organization_id,
        "entity_version": time.time_ns() // 1_000_000,
    }
    scope = SyncScopePayload(requested_by=requested_by, only_unsynced=not everything)
    pull = PullSyncRequestedPayload(requested_by=requested_by, full=everything)
    if kind == "customers":
        return SyncAllCustomersRequested(event_type="SyncAllCustomersRequested", payload=scope, **common)  # type: ignore[arg-type]
    if kind == "invoices":
        return SyncAllUnsentInvoicesRequested(event_type="SyncAllUnsentInvoicesRequested", payload=scope, **common)  # type: ignore[arg-type]
    if kind == "items":
        return SyncItemsRequested(event_type="SyncItemsRequested", payload=pull, **common)  # type: ignore[arg-type]
    if kind == "payments":
        return SyncPaymentsRequested(event_type="SyncPaymentsRequested", payload=pull, **common)  # type: ignore[arg-type]
    return SyncTaxRequested(event_type="SyncTaxRequested", payload=pull, **common)  # type: ignore[arg-type]
