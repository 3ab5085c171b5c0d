"""What the campaign reads back: result events, pulled changes, dead letters, QuickBooks' books, secrets in use.

Everything is read from the outside, the way Batchly and an operator would see it: the ``qbsync.sync-results`` and
``qbsync.changes`` topics (from their start, de-duplicated by result event id), the dead-letter topics, the emulator's
admin API (stored rows, request counters), token-manager's API — never a service's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from qbsync.runtime.kafka import end_offsets
from qbsync.topics import QBSYNC_CHANGES, QBSYNC_SYNC_RESULTS, dead_letter_topic

__all__ = ["Books", "DeadLetter", "ResultLog", "read_books", "read_dead_letters"]

#: The entities whose rows the accounting pass compares with Batchly.
BOOK_ENTITIES = ("Customer", "Invoice", "CreditMemo", "Payment", "RefundReceipt", "Item")


@dataclass
class ResultLog:
    """Every result and change published during the run, read continuously from the start of both topics."""

    bootstrap: str
    prefix: str
    #: source event id -> result event id -> the result document (a re-published result has the same id)
    results: dict[UUID, dict[UUID, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    #: Batchly invoice id -> InvoicePaymentChanged documents (by event id)
    payment_changes: dict[UUID, dict[UUID, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    records_read: int = 0
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            self.prefix + QBSYNC_SYNC_RESULTS,
            self.prefix + QBSYNC_CHANGES,
            bootstrap_servers=self.bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            metadata_max_age_ms=2_000,
        )
        await consumer.start()
        self._task = asyncio.create_task(self._run(consumer), name="campaign result reader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=250, max_records=2_000)
                for records in batch.values():
                    for record in records:
                        self._take(record.topic.removeprefix(self.prefix), record.value)
        finally:
            await consumer.stop()

    def _take(self, topic: str, value: bytes | None) -> None:
        self.records_read += 1
        document = json.loads(value or b"{}")
        payload = document.get("payload") or {}
        if topic == QBSYNC_CHANGES:
            if document.get("event_type") == "InvoicePaymentChanged":
                self.payment_changes[UUID(payload["invoice_id"])][UUID(document["event_id"])] = document
            return
        source = payload.get("source_event_id")
        if source is not None:
            self.results[UUID(source)][UUID(document["event_id"])] = document

    def of(self, event_id: UUID) -> list[dict[str, Any]]:
        """The distinct results of one source event, oldest first."""
        return sorted(self.results.get(event_id, {}).values(), key=lambda d: str(d["occurred_at"]))

    def synced_invoices(self) -> dict[UUID, str]:
        """Batchly invoice id -> QuickBooks id, from invoice-sync's SyncCompleted of InvoiceCreated events."""
        found: dict[UUID, str] = {}
        for documents in list(self.results.values()):
            for document in list(documents.values()):
                payload = document["payload"]
                if (
                    document["event_type"] == "SyncCompleted"
                    and payload.get("source_event_type") == "InvoiceCreated"
                    and payload.get("qbo_id")
                ):
                    found[UUID(document["entity_id"])] = str(payload["qbo_id"])
        return found


@dataclass(frozen=True, slots=True)
class DeadLetter:
    service: str
    partition: int
    offset: int
    headers: dict[str, str]
    #: The envelope's ``event_id`` when the value is a JSON object that has one (else ``None``).
    event_id: UUID | None

    @property
    def error_class(self) -> str:
        return self.headers.get("qbsync-error-class", "")

    @property
    def reason(self) -> str:
        return self.headers.get("qbsync-error-message", "")


async def read_dead_letters(bootstrap: str, prefix: str, services: list[str]) -> list[DeadLetter]:
    """Every record in the services' dead-letter topics (up to their end offsets at the time of the call)."""
    found: list[DeadLetter] = []
    for service in services:
        found.extend(await _read_topic(bootstrap, prefix + dead_letter_topic(service), service))
    return found


async def _read_topic(bootstrap: str, topic: str, service: str) -> list[DeadLetter]:
    found: list[DeadLetter] = []
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        # Subscribed without a group, the consumer is assigned every partition once it has the topic's metadata.
        async with asyncio.timeout(20):
            while not consumer.assignment():
                await asyncio.sleep(0.2)
        partitions = {tp.partition for tp in consumer.assignment()}
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await end_offsets(consumer, tps)  # tansu under-reports ListOffsets for multi-record batches
        await consumer.seek_to_beginning(*tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        async with asyncio.timeout(60):
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=500)
                for tp, records in batch.items():
                    found.extend(_dead_letter(service, r) for r in records if r.offset < ends[tp])
                    if records and records[-1].offset >= ends[tp] - 1:
                        remaining.discard(tp)
    finally:
        await consumer.stop()
    return found


def _dead_letter(service: str, record: Any) -> DeadLetter:
    headers = {k: (v or b"").decode("utf-8", errors="replace") for k, v in record.headers}
    event_id: UUID | None = None
    with contextlib.suppress(ValueError, TypeError, AttributeError, UnicodeDecodeError):
        document = json.loads(record.value or b"")
        event_id = UUID(document["event_id"]) if isinstance(document, dict) else None
    return DeadLetter(service, record.partition, record.offset, headers, event_id)


@dataclass
class Books:
    """QuickBooks' side at the end of the run: rows per company and entity, and request counters."""

    rows: dict[str, dict[str, list[dict[str, Any]]]]
    stats: dict[str, dict[str, Any]]
    faults: list[dict[str, Any]]


async def read_books(http: httpx.AsyncClient, emulator_url: str, realms: list[str]) -> Books:
    rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
    stats: dict[str, dict[str, Any]] = {}
    for realm in realms:
        rows[realm] = {}
        for entity in BOOK_ENTITIES:
            response = await http.get(f"{emulator_url}/_admin/companies/{realm}/entities/{entity}")
            response.raise_for_status()
            rows[realm][entity] = list(response.json().get(entity, []))
        stats[realm] = (await http.get(f"{emulator_url}/_admin/companies/{realm}/stats")).json()
    faults = (await http.get(f"{emulator_url}/_admin/faults")).json()
    return Books(rows, stats, list(faults))
