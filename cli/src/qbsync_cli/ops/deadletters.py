"""Dead-letter topics: browse them, and replay what a person decided to send again.

What a good replay tool does (``kafka-notes.md`` §1), and how this one does it:

* **keeps key and headers** — a replayed record is the dead-lettered record (same key, same value, the producer's
  headers, the ``qbsync-original-*`` origin) re-sent through the same partitioner as the services (aiokafka);
* **goes where a retry goes** — into the service's first retry tier with a fresh ladder (attempt 1 due now, then
  the tiers again, then the dead letter) and a ``qbsync-replayed-at`` header, so the service handles it with the
  same idempotency as any redelivery: a record that completed before is answered from its idempotency row, and
  QuickBooks writes carry the same ``requestid`` — replaying twice never duplicates anything in QuickBooks;
* **filters, dry-run, limit, throttle** — by error class, error code, organization, event type and failure time;
* **commits only after the re-publish is acknowledged** — a consumer group per service on its dead-letter topic
  (``qbsync.ops.replay.<service>``) is the replay cursor. Per partition it moves over records that were replayed,
  superseded by a later copy of the same event, or already handled, and stops at the first record a filter left
  out, so a later replay with other filters still finds it. An interrupted replay resumes where it stopped.
* **never replays what is already handled** — the service's ledger says whether the event has moved on since it was
  dead-lettered (completed, or back on the ladder after an earlier replay); such records are skipped unless
  ``force`` is given (the services' idempotency makes a forced replay harmless too).

Each run reads up to the end offsets seen when it started, so records dead-lettered again during the run (a replay
that fails again) are left for the next run instead of looping.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from qbsync.runtime import headers as h
from qbsync.runtime.kafka import OutboundRecord, Publisher, client_options, end_offsets
from qbsync.settings import Settings
from qbsync.topics import dead_letter_topic, retry_topic

__all__ = [
    "REPLAYED_AT",
    "REPLAYED_FROM",
    "DeadLetter",
    "Filters",
    "ReplayPlan",
    "read_dead_letters",
    "replay",
    "replay_group",
    "retry_record",
]

REPLAYED_AT = h.REPLAYED_AT
REPLAYED_FROM = h.REPLAYED_FROM
#: A run never reads more than this many records (a safety bound; use filters and --limit for huge topics).
MAX_SCAN = 200_000


def replay_group(service: str, prefix: str = "") -> str:
    """The replay cursor's group; the topic prefix keeps environments on one cluster apart."""
    return f"{prefix}qbsync.ops.replay.{service}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead-letter topic, with what its headers and envelope say."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: h.Headers

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def error_class(self) -> str:
        return self.headers.get(h.ERROR_CLASS, "")

    @property
    def error_code(self) -> str:
        return self.headers.get(h.ERROR_CODE, "")

    @property
    def error_message(self) -> str:
        return self.headers.get(h.ERROR_MESSAGE, "")

    @property
    def failed_at(self) -> datetime:
        text = self.headers.get(h.FAILED_AT)
        if text:
            try:
                return h.parse_time(text)
            except ValueError:
                pass
        return datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)

    @property
    def organization(self) -> str:
        return self.key.decode("utf-8", "replace") if self.key is not None else ""

    def envelope_field(self, name: str) -> str:
        try:
            document = json.loads(self.value)
        except (ValueError, UnicodeDecodeError):
            return ""
        value = document.get(name) if isinstance(document, dict) else None
        return value if isinstance(value, str) else ""

    @property
    def event_id(self) -> str:
        return self.envelope_field("event_id")

    @property
    def event_type(self) -> str:
        return self.headers.get(h.EVENT_TYPE) or self.envelope_field("event_type")


@dataclass(frozen=True)
class Filters:
    """Which dead letters to take. Malformed records are left out unless asked for by error class: replaying the
    same bytes cannot succeed (the producer must publish a corrected event)."""

    error_classes: tuple[str, ...] = ()
    error_codes: tuple[str, ...] = ()
    organization_id: UUID | None = None
    event_types: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    #: Take malformed records without naming the class (listing does; replay does not).
    include_malformed: bool = False

    def matches(self, record: DeadLetter) -> bool:
        if self.error_classes:
            if record.error_class not in self.error_classes:
                return False
        elif record.error_class == "malformed" and not self.include_malformed:
            return False
        if self.error_codes and record.error_code not in self.error_codes:
            return False
        if self.organization_id is not None and record.organization != str(self.organization_id):
            return False
        if self.event_types and record.event_type not in self.event_types:
            return False
        failed = record.failed_at
        if self.since is not None and failed < self.since:
            return False
        return not (self.until is not None and failed > self.until)


async def read_dead_letters(
    settings: Settings, service: str, *, from_cursor: bool = False, max_records: int = MAX_SCAN
) -> tuple[list[DeadLetter], dict[int, int]]:
    """Every record of ``service``'s dead-letter topic (from the replay cursor with ``from_cursor``), oldest first
    per partition, and the replay cursor's committed offsets by partition (records before them were replayed)."""
    group = replay_group(service, settings.topics.prefix)
    async with _consumer(settings, group) as consumer:
        partitions = await _partitions(consumer, settings.topics.prefix + dead_letter_topic(service))
        cursor = await _committed(consumer, partitions)
        starts = cursor if from_cursor else {}
        records = await _read(consumer, partitions, starts, max_records)
    return records, {tp.partition: offset for tp, offset in cursor.items()}


@dataclass
class ReplayPlan:
    """What a replay run does: records to send, and where each partition's cursor may move once they are sent."""

    service: str
    scanned: int
    to_replay: list[DeadLetter]
    #: records left out by the filters (they hold the cursor of their partition)
    skipped: int
    #: earlier copies of an event that has a later dead letter in this run (replaying the later one suffices)
    superseded: list[DeadLetter]
    #: events the service's ledger shows as moved on since they were dead-lettered (completed, retrying...)
    handled: list[DeadLetter]
    starts: dict[int, int]
    commits: dict[int, int] = field(default_factory=dict)


def plan_replay(
    service: str,
    records: Sequence[DeadLetter],
    starts: dict[int, int],
    filters: Filters,
    limit: int | None,
    handled: frozenset[str] = frozenset(),
) -> ReplayPlan:
    """Decide (purely) which records to replay; ``commits`` is each partition's cursor after the sends succeed.

    ``handled`` holds the event ids the ledger shows as moved on since their dead letter."""
    latest: dict[str, DeadLetter] = {}
    for record in records:
        key = record.event_id or f"{record.partition}:{record.offset}"
        current = latest.get(key)
        if current is None or record.failed_at >= current.failed_at:
            latest[key] = record
    chosen: list[DeadLetter] = []
    superseded: list[DeadLetter] = []
    done: list[DeadLetter] = []
    skipped = 0
    commits: dict[int, int] = {}
    blocked: set[int] = set()
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        if limit is not None and len(chosen) >= limit:
            blocked.add(record.partition)
            continue
        if not filters.matches(record):
            skipped += 1
            blocked.add(record.partition)
            continue
        if latest[record.event_id or f"{record.partition}:{record.offset}"] is not record:
            superseded.append(record)
        elif record.event_id and record.event_id in handled:
            done.append(record)
        else:
            chosen.append(record)
        if record.partition not in blocked:
            commits[record.partition] = record.offset + 1
    return ReplayPlan(service, len(records), chosen, skipped, superseded, done, dict(starts), commits)


async def handled_events(settings: Settings, service: str, records: Sequence[DeadLetter]) -> frozenset[str]:
    """Event ids whose ledger row moved on after the dead letter: not failed any more, or updated since."""
    from qbsync_cli.ops.ledgers import Ledgers

    ids: dict[UUID, DeadLetter] = {}
    for record in records:
        try:
            ids[UUID(record.event_id)] = record
        except ValueError:
            continue
    async with await Ledgers.open(settings.database, [service]) as ledgers:
        states = await ledgers.states(service, ids)
    moved: set[str] = set()
    for event_id, (status, updated_at) in states.items():
        letter = ids[event_id]
        if status != "failed" or updated_at > letter.failed_at + timedelta(seconds=1):
            moved.add(str(event_id))
    return frozenset(moved)


def retry_record(record: DeadLetter, *, service: str, source: str, now: datetime) -> OutboundRecord:
    """``record`` as a first-tier retry of ``service`` with a fresh ladder: attempt 1, due now."""
    headers = dict(record.headers)
    headers.update(
        {
            h.ORIGINAL_TOPIC: record.headers.get(h.ORIGINAL_TOPIC, record.topic),
            h.ORIGINAL_PARTITION: record.headers.get(h.ORIGINAL_PARTITION, str(record.partition)),
            h.ORIGINAL_OFFSET: record.headers.get(h.ORIGINAL_OFFSET, str(record.offset)),
            h.ORIGINAL_TIMESTAMP: record.headers.get(h.ORIGINAL_TIMESTAMP, str(record.timestamp_ms)),
            h.ATTEMPT: "1",
            h.FIRST_FAILURE_AT: h.format_time(now),
            h.DUE_AT: h.format_time(now),
            h.SERVICE: service,
            h.CONSUMER_GROUP: record.headers.get(h.CONSUMER_GROUP, f"qbsync.{service}"),
            REPLAYED_AT: h.format_time(now),
            REPLAYED_FROM: source,
        }
    )
    return OutboundRecord(retry_topic(service, 1), record.key, record.value, headers)


async def replay(
    settings: Settings,
    service: str,
    filters: Filters,
    *,
    limit: int | None = None,
    throttle_per_second: float | None = None,
    dry_run: bool = False,
    force: bool = False,
    on_sent: Callable[[DeadLetter, int, int], Awaitable[None] | None] | None = None,
) -> ReplayPlan:
    """Replay the dead letters of ``service`` that match ``filters`` (see the module docstring)."""
    group = replay_group(service, settings.topics.prefix)
    async with _consumer(settings, group) as consumer:
        partitions = await _partitions(consumer, settings.topics.prefix + dead_letter_topic(service))
        starts = await _committed(consumer, partitions)
        records = await _read(consumer, partitions, starts, MAX_SCAN)
        handled = frozenset() if force else await handled_events(settings, service, records)
        starts_by_partition = {tp.partition: o for tp, o in starts.items()}
        plan = plan_replay(service, records, starts_by_partition, filters, limit, handled)
        if dry_run or (not plan.to_replay and not plan.commits):
            return plan
        publisher = Publisher(settings.kafka, client_id="ops-replay", topic_prefix=settings.topics.prefix)
        await publisher.start()
        try:
            await _send(publisher, plan, service, throttle_per_second, on_sent)
        finally:
            await publisher.stop()
        # Every send above was acknowledged (send raises otherwise): only now does the cursor move.
        topic = settings.topics.prefix + dead_letter_topic(service)
        offsets = {TopicPartition(topic, p): OffsetAndMetadata(o, "") for p, o in plan.commits.items()}
        if offsets:
            await consumer.commit(offsets)
    return plan


async def _send(
    publisher: Publisher,
    plan: ReplayPlan,
    service: str,
    throttle_per_second: float | None,
    on_sent: Callable[[DeadLetter, int, int], Awaitable[None] | None] | None,
) -> None:
    interval = 1.0 / throttle_per_second if throttle_per_second else 0.0
    total = len(plan.to_replay)
    for index, record in enumerate(plan.to_replay, start=1):
        started = time.monotonic()
        source = f"{record.topic}:{record.partition}:{record.offset}"
        await publisher.send(retry_record(record, service=service, source=source, now=datetime.now(UTC)))
        if on_sent is not None:
            result = on_sent(record, index, total)
            if asyncio.iscoroutine(result):
                await result
        if interval and index < total:
            await asyncio.sleep(max(interval - (time.monotonic() - started), 0.0))


# ---- consumer plumbing -----------------------------------------------------------------------------------------------
class _consumer:
    """An assign-only consumer (never joins a rebalance); with a group only so it can read and commit a cursor."""

    def __init__(self, settings: Settings, group: str | None) -> None:
        self._consumer = AIOKafkaConsumer(
            **client_options(settings.kafka, "ops"),
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )

    async def __aenter__(self) -> AIOKafkaConsumer:
        try:
            await self._consumer.start()
        except BaseException:
            await self._consumer.stop()  # a failed start leaves its connections open otherwise
            raise
        return self._consumer

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    if topic not in await consumer.topics():
        raise LookupError(f"topic {topic} does not exist (has the service ever run against this broker?)")
    numbers = consumer.partitions_for_topic(topic) or set()
    partitions = [TopicPartition(topic, p) for p in sorted(numbers)]
    consumer.assign(partitions)
    return partitions


async def _committed(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
    cursor: dict[TopicPartition, int] = {}
    for tp in partitions:
        offset = await consumer.committed(tp)
        if offset is not None and offset >= 0:
            cursor[tp] = offset
    return cursor


async def _read(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], starts: dict[TopicPartition, int], max_records: int
) -> list[DeadLetter]:
    if not partitions:
        return []
    ends = await end_offsets(consumer, partitions)
    beginnings = await consumer.beginning_offsets(partitions)
    pending: set[TopicPartition] = set()
    for tp in partitions:
        start = max(starts.get(tp, beginnings[tp]), beginnings[tp])
        if start < ends[tp]:
            consumer.seek(tp, start)
            pending.add(tp)
    records: list[DeadLetter] = []
    async with asyncio.timeout(120):
        while pending and len(records) < max_records:
            batch = await consumer.getmany(*pending, timeout_ms=500, max_records=1000)
            for tp, items in batch.items():
                records.extend(_dead_letter(item) for item in items if item.offset < ends[tp])
                if items and items[-1].offset + 1 >= ends[tp]:
                    pending.discard(tp)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    return records[:max_records]


def _dead_letter(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    headers: h.Headers = {}
    for name, value in record.headers or ():
        headers[name.lower()] = (value or b"").decode("utf-8", "replace")
    return DeadLetter(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        key=record.key,
        value=record.value or b"",
        headers=headers,
    )
