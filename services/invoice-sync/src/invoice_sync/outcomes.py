"""Outcomes reported outside a handler's own return value.

* The children of "Sync All Unsent Invoices": one ledger row and one result event per invoice, as it completes, so
  progress is visible while the command runs (as customer-sync's bulk does).
* A void applied by the invoice's create (it arrived first and was deferred): its ledger row becomes completed and
  its ``SyncCompleted`` is published.

Result event ids are deterministic, so a repeated report is de-duplicated by consumers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from invoice_sync import store
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.outbound import SyncCompleted, SyncCompletedPayload, SyncFailed, SyncFailedPayload, SyncWarning
from qbsync.persistence.database import Database
from qbsync.runtime import Completed, HandlerContext, Publisher, results
from qbsync.runtime import ledger as runtime_ledger
from qbsync.runtime.errors import Classified

__all__ = ["Child", "already_synced", "child_event_id", "record_child", "report_completed"]

Action = Literal["created", "updated", "linked", "voided", "applied", "unchanged"]


def already_synced(document: store.Document, event_id: UUID) -> Completed:
    """The outcome of a document already in QuickBooks: what the event that wrote it did, ``unchanged`` for others."""
    assert document.qbo_id is not None, "a synced document has a QuickBooks id"
    own = document.synced_event_id == event_id
    return Completed(
        action="created" if own and document.action == "created" else "linked" if own else "unchanged",
        qbo_id=document.qbo_id,
        qbo_doc_number=document.qbo_doc_number,
        warnings=[SyncWarning.model_validate(w) for w in document.warnings],
        needs_review=document.needs_review,
    )


def child_event_id(parent_event_id: UUID, document_id: UUID) -> UUID:
    """The id a bulk command's work on one document is known by (stable across the command's retries)."""
    return uuid.uuid5(parent_event_id, str(document_id))


@dataclass(frozen=True, slots=True)
class Child:
    """One document handled by a bulk command."""

    event_id: UUID
    entity_type: str
    entity_id: UUID
    entity_version: int
    doc_number: str | None = None


async def record_child(
    ctx: HandlerContext,
    publisher: Publisher,
    parent: AnyEnvelope,
    child: Child,
    *,
    service: str,
    started: datetime,
    action: Action | None = None,
    qbo_id: str | None = None,
    warnings: Sequence[SyncWarning] = (),
    needs_review: bool = False,
    error: Classified | None = None,
) -> None:
    """A ledger row and a result event for one document of a bulk command (completed, or failed with ``error``)."""
    now = datetime.now(UTC)
    entry = runtime_ledger.LedgerEntry(
        service=service,
        event_id=child.event_id,
        event_type=parent.event_type,
        organization_id=parent.organization_id,
        entity_type=child.entity_type,
        entity_id=child.entity_id,
        entity_version=child.entity_version,
        direction="push",
        status="completed" if error is None else "failed",
        attempts=1,
        max_attempts=1,
        source_topic=ctx.topic,
        source_partition=ctx.partition,
        source_offset=ctx.offset,
        now=now,
        occurred_at=parent.occurred_at,
        last_attempt_at=started,
        completed=error is None,
    )
    common: dict[str, Any] = {
        "schema_version": 1,
        "occurred_at": now,
        "organization_id": parent.organization_id,
        "entity_id": child.entity_id,
        "entity_version": child.entity_version,
        "correlation_id": parent.correlation_id or parent.event_id,
        "causation_id": parent.event_id,
    }
    base: dict[str, Any] = {
        "service": service,
        "source_event_id": parent.event_id,
        "source_event_type": parent.event_type,
        "entity_type": child.entity_type,
        "attempt": 1,
        "max_attempts": 1,
    }
    outcome: AnyEnvelope
    if error is None:
        assert action is not None, "a completed child has an action"
        entry.action, entry.qbo_id, entry.qbo_doc_number = action, qbo_id, child.doc_number
        entry.warnings, entry.needs_review = [w.model_dump() for w in warnings], needs_review
        outcome = SyncCompleted(
            event_id=results.result_event_id(child.event_id, service, "completed", 1),
            event_type="SyncCompleted",
            payload=SyncCompletedPayload(
                **base,
                action=action,
                qbo_id=qbo_id,
                qbo_doc_number=child.doc_number,
                warnings=list(warnings),
                needs_review=needs_review,
            ),
            **common,
        )
    else:
        entry.error_class, entry.error_code, entry.error_message, entry.hint = (
            error.error_class,
            error.code,
            error.message,
            error.hint,
        )
        entry.manual_retry_available = True
        outcome = SyncFailed(
            event_id=results.result_event_id(child.event_id, service, "failed", 1),
            event_type="SyncFailed",
            payload=SyncFailedPayload(
                **base,
                error_class=error.error_class,
                error_code=error.code,
                message=error.message,
                hint=error.hint,
                manual_retry_available=True,
            ),
            **common,
        )
    async with ctx.db.transaction() as conn:
        await runtime_ledger.upsert_ledger(conn, entry)
    await publisher.publish(outcome)


async def report_completed(
    db: Database,
    publisher: Publisher,
    source: AnyEnvelope,
    *,
    service: str,
    max_attempts: int,
    position: tuple[str, int, int],
    action: Action,
    qbo_id: str,
    qbo_doc_number: str | None,
) -> None:
    """Complete the ledger row of an event that was deferred and finished by another record; publish its result."""
    now = datetime.now(UTC)
    topic, partition, offset = position
    entry = runtime_ledger.LedgerEntry(
        service=service,
        event_id=source.event_id,
        event_type=source.event_type,
        organization_id=source.organization_id,
        entity_type=source.ENTITY_TYPE,
        entity_id=source.entity_id,
        entity_version=source.entity_version,
        direction="push",
        status="completed",
        attempts=1,
        max_attempts=max_attempts,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        now=now,
        occurred_at=source.occurred_at,
        last_attempt_at=now,
        completed=True,
    )
    entry.action, entry.qbo_id, entry.qbo_doc_number = action, qbo_id, qbo_doc_number
    async with db.transaction() as conn:
        await runtime_ledger.upsert_ledger(conn, entry)
    result = results.completed(
        source,
        service=service,
        attempt=1,
        max_attempts=max_attempts,
        action=action,
        qbo_id=qbo_id,
        qbo_doc_number=qbo_doc_number,
        warnings=(),
        needs_review=False,
        now=now,
    )
    await publisher.publish(result)
