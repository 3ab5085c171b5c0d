"""Follows what the platform answers: sync results and pulled payment changes, per organization."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer

from qbsync.runtime.kafka import client_options
from qbsync.settings import Settings
from qbsync.topics import QBSYNC_CHANGES, QBSYNC_SYNC_RESULTS

__all__ = ["Outcome", "Tracker"]

_TERMINAL_STATUSES = ("ignored",)


@dataclass
class Outcome:
    status: str  # completed | failed | ignored | retrying | parked | pending
    entity_type: str
    qbo_id: str | None = None
    message: str = ""


@dataclass
class Tracker:
    """Reads ``qbsync.sync-results`` and ``qbsync.changes`` from their start into plain dictionaries."""

    settings: Settings
    outcomes: dict[UUID, Outcome] = field(default_factory=dict)
    #: Batchly invoice id -> newest payment status pulled from QuickBooks
    payments: dict[UUID, str] = field(default_factory=dict)
    changes: Counter[tuple[UUID, str]] = field(default_factory=Counter)
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        prefix = self.settings.topics.prefix
        consumer = AIOKafkaConsumer(
            prefix + QBSYNC_SYNC_RESULTS,
            prefix + QBSYNC_CHANGES,
            **client_options(self.settings.kafka, "demo"),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        self._task = asyncio.create_task(self._run(consumer), name="demo tracker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=250, max_records=1000)
                for records in batch.values():
                    for record in records:
                        self._take(record.topic.removeprefix(self.settings.topics.prefix), record.value)
        finally:
            await consumer.stop()

    def _take(self, topic: str, value: bytes | None) -> None:
        try:
            document: dict[str, Any] = json.loads(value or b"")
        except ValueError:
            return
        payload = document.get("payload") or {}
        kind = document.get("event_type")
        if topic == QBSYNC_CHANGES:
            self.changes[(UUID(document["organization_id"]), str(kind))] += 1
            if kind == "InvoicePaymentChanged":
                self.payments[UUID(payload["invoice_id"])] = str(payload["status"])
            return
        if "source_event_id" not in payload:
            return
        source = UUID(payload["source_event_id"])
        current = self.outcomes.get(source)
        if current is not None and current.status in ("completed", "failed", "ignored"):
            return  # a terminal outcome stays (re-published duplicates carry the same answer)
        entity = str(payload.get("entity_type", ""))
        if kind == "SyncCompleted":
            self.outcomes[source] = Outcome("completed", entity, payload.get("qbo_id"), str(payload.get("action", "")))
        elif kind == "SyncFailed":
            self.outcomes[source] = Outcome("failed", entity, message=str(payload.get("message", "")))
        elif kind == "SyncStatusChanged":
            self.outcomes[source] = Outcome(
                str(payload.get("status")), entity, message=str(payload.get("message") or "")
            )
