"""Handlers and their outcomes.

A handler is ``async def handle(ctx, event) -> Outcome``. It gathers what it needs, lets a pure function decide, does
the QBO work, and returns an outcome that says what to persist and publish — the runtime then records it in one short
database transaction together with the idempotency row and the ledger, publishes, and only then commits the offset.
Failures are raised (see :mod:`qbsync.runtime.errors`), never returned.

Outcomes:

* :class:`Completed` — the sync happened (``SyncCompleted`` is published with the QBO id).
* :class:`Ignored` — deliberately not synced, with a reason (a stale snapshot, a sales order, ...).
* :class:`Deferred` — accepted and scheduled for later (a customer update held for the nightly batch): the ledger says
  ``deferred`` and Batchly sees ``pending``; the later batch syncs the entity under its own event.
* :class:`Recorded` — local bookkeeping only (organization settings, connection changes): no sync result, no ledger row.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from qbsync.contracts.envelope import AnyEnvelope
from qbsync.contracts.outbound import SyncWarning
from qbsync.persistence.database import Database

__all__ = [
    "Completed",
    "Deferred",
    "Handler",
    "HandlerContext",
    "HandlerRegistry",
    "Ignored",
    "Outcome",
    "Persist",
    "Recorded",
]

Persist = Callable[[AsyncConnection], Awaitable[None]]
EnvelopeT = TypeVar("EnvelopeT", bound=AnyEnvelope)


@dataclass(frozen=True, slots=True)
class Completed:
    action: Literal["created", "updated", "linked", "voided", "applied", "unchanged"]
    qbo_id: str | None = None
    qbo_doc_number: str | None = None
    warnings: Sequence[SyncWarning] = ()
    needs_review: bool = False
    #: State changes, applied in the same transaction as the idempotency row.
    persist: Persist | None = None
    #: Extra events to publish after the transaction (beside ``SyncCompleted``).
    publish: Sequence[AnyEnvelope] = ()


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str
    code: str = "ignored"
    persist: Persist | None = None
    publish: Sequence[AnyEnvelope] = ()


@dataclass(frozen=True, slots=True)
class Deferred:
    reason: str
    code: str = "deferred"
    persist: Persist | None = None
    publish: Sequence[AnyEnvelope] = ()


@dataclass(frozen=True, slots=True)
class Recorded:
    persist: Persist | None = None
    publish: Sequence[AnyEnvelope] = ()
    #: Runs after the transaction committed and results were published (e.g. resume parked work).
    after_commit: Callable[[], Awaitable[None]] | None = None


Outcome = Completed | Ignored | Deferred | Recorded


@dataclass(frozen=True, slots=True)
class HandlerContext:
    service: str
    consumer_group: str
    #: 1 for the first delivery, n for the record that carries attempt n from a retry tier.
    attempt: int
    max_attempts: int
    topic: str
    partition: int
    offset: int
    db: Database
    log: logging.LoggerAdapter[logging.Logger]
    #: Resources of the service (QBO client, settings, ...), set by its composition root.
    resources: Any = None

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


Handler = Callable[[HandlerContext, Any], Awaitable[Outcome]]


@dataclass
class HandlerRegistry:
    """Which event types this service handles. Registered types on its topics that it does not handle are skipped."""

    _handlers: dict[str, Handler] = field(default_factory=dict)
    _local: set[str] = field(default_factory=set)

    def register(
        self,
        event_type: type[EnvelopeT],
        handler: Callable[[HandlerContext, EnvelopeT], Awaitable[Outcome]],
        *,
        needs_connection: bool = True,
    ) -> None:
        """Handle ``event_type`` with ``handler``.

        ``needs_connection=False`` marks local bookkeeping (organization settings, connection changes) that must run
        even while the organization's QuickBooks connection is lost — everything else parks in that state.
        """
        name = event_type.EVENT_TYPE
        if not name:
            raise ValueError(f"{event_type.__name__} is not a registered event")
        if name in self._handlers:
            raise ValueError(f"a handler for {name} is already registered")
        self._handlers[name] = handler
        if not needs_connection:
            self._local.add(name)

    def on(
        self, *event_types: type[EnvelopeT], needs_connection: bool = True
    ) -> Callable[
        [Callable[[HandlerContext, EnvelopeT], Awaitable[Outcome]]],
        Callable[[HandlerContext, EnvelopeT], Awaitable[Outcome]],
    ]:
        def decorate(
            handler: Callable[[HandlerContext, EnvelopeT], Awaitable[Outcome]],
        ) -> Callable[[HandlerContext, EnvelopeT], Awaitable[Outcome]]:
            for event_type in event_types:
                self.register(event_type, handler, needs_connection=needs_connection)
            return handler

        return decorate

    def get(self, event_type: str) -> Handler | None:
        return self._handlers.get(event_type)

    def needs_connection(self, event_type: str) -> bool:
        return event_type not in self._local

    def handled_types(self) -> Iterable[str]:
        return self._handlers.keys()
