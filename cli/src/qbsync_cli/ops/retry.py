"""Manual retry (the seed's "Retry" button) and bulk retry ("Retry All Failed Syncs").

A failed sync is an event whose record sits in the owning service's dead-letter topic. Retrying it re-sends the
event to that service's first retry tier with a fresh ladder — exactly what ``dlq replay`` does — taking the record
from its original position (the ledger knows topic, partition and offset) or, once retention removed it there, from
the dead-letter topic. The outcome is read from ``qbsync.sync-results``: succeeded, failed again (with the error),
or back on the automatic ladder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition

from qbsync.runtime import headers as h
from qbsync.runtime.kafka import OutboundRecord, Publisher, client_options, end_offsets
from qbsync.settings import Settings
from qbsync_cli.ops.deadletters import DeadLetter, read_dead_letters, retry_record
from qbsync_cli.ops.ledgers import LedgerRow
from qbsync_cli.ops.results import Answer, ResultWatcher

__all__ = ["RetryOutcome", "find_record", "retry_rows"]


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    row: LedgerRow
    queued: bool
    answer: Answer | None
    problem: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.answer is not None and self.answer.succeeded


async def find_record(settings: Settings, row: LedgerRow) -> DeadLetter | None:
    """The event's record: at its original position if still retained there, else its newest dead letter."""
    original = await _read_at(settings, row.source_topic, row.source_partition, row.source_offset)
    if original is not None and original.event_id == str(row.event_id):
        return original
    letters, _cursor = await read_dead_letters(settings, row.service)
    matching = [letter for letter in letters if letter.event_id == str(row.event_id)]
    return max(matching, key=lambda letter: (letter.failed_at, letter.offset)) if matching else None


async def retry_rows(
    settings: Settings,
    rows: Sequence[LedgerRow],
    *,
    wait_seconds: float,
    on_queued: Callable[[int, int], None] | None = None,
    on_answer: Callable[[Answer, int, int], None] | None = None,
) -> list[RetryOutcome]:
    """Queue every row's event for a fresh attempt, then wait (up to ``wait_seconds``) for each outcome."""
    queued: list[LedgerRow] = []
    problems: dict[UUID, str] = {}
    async with ResultWatcher(settings) as watcher:
        publisher = Publisher(settings.kafka, client_id="ops-retry", topic_prefix=settings.topics.prefix)
        await publisher.start()
        try:
            for index, row in enumerate(rows, start=1):
                problem = await _queue(settings, publisher, row)
                if problem is None:
                    queued.append(row)
                else:
                    problems[row.id] = problem
                if on_queued is not None:
                    on_queued(index, len(rows))
        finally:
            await publisher.stop()
        keys = [(r.event_id, r.service) for r in queued]
        answers = await watcher.wait(keys, wait_seconds=wait_seconds, on_answer=on_answer)
    return [
        RetryOutcome(row, row.id not in problems, answers.get((row.event_id, row.service)), problems.get(row.id))
        for row in rows
    ]


async def _queue(settings: Settings, publisher: Publisher, row: LedgerRow) -> str | None:
    if row.malformed:
        return "malformed record: it cannot succeed again; the producer must publish a corrected event"
    record = await find_record(settings, row)
    if record is None:
        return "the record is no longer in Kafka (original topic or dead-letter topic); re-send it from Batchly"
    source = f"{record.topic}:{record.partition}:{record.offset}"
    outbound: OutboundRecord = retry_record(record, service=row.service, source=source, now=datetime.now(UTC))
    await publisher.send(outbound)
    return None


async def _read_at(settings: Settings, topic: str, partition: int, offset: int) -> DeadLetter | None:
    """One record at an exact position of a logical topic, as a ``DeadLetter`` carrying its origin headers."""
    physical = settings.topics.prefix + topic
    consumer = AIOKafkaConsumer(**client_options(settings.kafka, "ops-retry"), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        if physical not in await consumer.topics():
            return None
        tp = TopicPartition(physical, partition)
        consumer.assign([tp])
        beginning = (await consumer.beginning_offsets([tp]))[tp]
        end = (await end_offsets(consumer, [tp]))[tp]
        if not beginning <= offset < end:
            return None
        consumer.seek(tp, offset)
        batch = await consumer.getmany(tp, timeout_ms=10_000, max_records=1)
        records = batch.get(tp, [])
        if not records or records[0].offset != offset:
            return None
        record = records[0]
        headers = {name.lower(): (value or b"").decode("utf-8", "replace") for name, value in record.headers or ()}
        headers.update(
            {
                h.ORIGINAL_TOPIC: topic,
                h.ORIGINAL_PARTITION: str(partition),
                h.ORIGINAL_OFFSET: str(offset),
                h.ORIGINAL_TIMESTAMP: str(record.timestamp),
            }
        )
        return DeadLetter(topic, partition, offset, record.timestamp, record.key, record.value or b"", headers)
    finally:
        await consumer.stop()
