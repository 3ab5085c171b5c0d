"""Build the sync-result events (``SyncCompleted``, ``SyncFailed``, ``SyncStatusChanged``) for an inbound event.

Result ids are deterministic (``uuid5`` of the source event, the service, the step and the attempt), so a result
re-published after a crash carries the same ``event_id`` and Batchly's de-duplication absorbs it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.outbound import (
    SyncCompleted,
    SyncCompletedPayload,
    SyncFailed,
    SyncFailedPayload,
    SyncStatus,
    SyncStatusChanged,
    SyncStatusPayload,
    SyncWarning,
)
from qbsync.runtime.errors import Classified

__all__ = ["completed", "failed", "result_event_id", "status_changed"]

_NAMESPACE = uuid.UUID("0d8b2f7c-4c1e-4f8e-9e57-5a0f3c3d9b21")


def result_event_id(
    source_event_id: uuid.UUID, service: str, step: str, attempt: int, generation: str = ""
) -> uuid.UUID:
    """Deterministic: the same step of the same delivery always gets the same id; a replay (``generation``) new ones."""
    suffix = f":{generation}" if generation else ""
    return uuid.uuid5(_NAMESPACE, f"{source_event_id}:{service}:{step}:{attempt}{suffix}")


def _common(
    source: AnyEnvelope, *, service: str, step: str, attempt: int, now: datetime, generation: str = ""
) -> dict[str, object]:
    return {
        "event_id": result_event_id(source.event_id, service, step, attempt, generation),
        "schema_version": 1,
        "occurred_at": now,
        "organization_id": source.organization_id,
        "entity_id": source.entity_id,
        "entity_version": source.entity_version,
        "correlation_id": source.correlation_id or source.event_id,
        "causation_id": source.event_id,
    }


def completed(
    source: AnyEnvelope,
    *,
    service: str,
    attempt: int,
    max_attempts: int,
    action: Literal["created", "updated", "linked", "voided", "applied", "unchanged"],
    qbo_id: str | None,
    qbo_doc_number: str | None,
    warnings: Sequence[SyncWarning],
    needs_review: bool,
    now: datetime,
    generation: str = "",
) -> SyncCompleted:
    return SyncCompleted(
        event_type="SyncCompleted",
        payload=SyncCompletedPayload(
            service=service,
            source_event_id=source.event_id,
            source_event_type=source.event_type,
            entity_type=source.ENTITY_TYPE,
            attempt=attempt,
            max_attempts=max_attempts,
            action=action,
            qbo_id=qbo_id,
            qbo_doc_number=qbo_doc_number,
            warnings=list(warnings),
            needs_review=needs_review,
        ),
        **_common(source, service=service, step="completed", attempt=attempt, now=now, generation=generation),  # type: ignore[arg-type]
    )


def failed(
    source: AnyEnvelope,
    *,
    service: str,
    attempt: int,
    max_attempts: int,
    error: Classified,
    dead_letter_topic: str,
    now: datetime,
    generation: str = "",
) -> SyncFailed:
    return SyncFailed(
        event_type="SyncFailed",
        payload=SyncFailedPayload(
            service=service,
            source_event_id=source.event_id,
            source_event_type=source.event_type,
            entity_type=source.ENTITY_TYPE,
            attempt=attempt,
            max_attempts=max_attempts,
            error_class=error.error_class,
            error_code=error.code,
            message=error.message,
            hint=error.hint,
            manual_retry_available=True,
            dead_letter_topic=dead_letter_topic,
        ),
        **_common(source, service=service, step="failed", attempt=attempt, now=now, generation=generation),  # type: ignore[arg-type]
    )


def status_changed(
    source: AnyEnvelope,
    *,
    service: str,
    attempt: int,
    max_attempts: int,
    status: SyncStatus,
    now: datetime,
    next_attempt_at: datetime | None = None,
    error: Classified | None = None,
    message: str | None = None,
    code: str | None = None,
    generation: str = "",
) -> SyncStatusChanged:
    return SyncStatusChanged(
        event_type="SyncStatusChanged",
        payload=SyncStatusPayload(
            service=service,
            source_event_id=source.event_id,
            source_event_type=source.event_type,
            entity_type=source.ENTITY_TYPE,
            attempt=attempt,
            max_attempts=max_attempts,
            status=status,
            next_attempt_at=next_attempt_at,
            error_class=error.error_class if error else None,
            error_code=(error.code if error else code),
            message=(error.message if error else message),
        ),
        **_common(source, service=service, step=status, attempt=attempt, now=now, generation=generation),  # type: ignore[arg-type]
    )
