"""aiokafka clients built from settings: common connection options, the publisher, and topic creation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from qbsync.contracts.codec import encode_envelope
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.runtime import headers as h
from qbsync.settings import KafkaSettings, TopicSettings
from qbsync.topics import TopicSpec

__all__ = ["OutboundRecord", "Publisher", "client_options", "end_offsets", "ensure_topics", "record_for"]

log = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36


def client_options(settings: KafkaSettings, client_id: str) -> dict[str, Any]:
    """Connection options shared by producers, consumers and admin clients."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.client_id_prefix}-{client_id}",
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": settings.request_timeout_ms,
    }
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_password.get_secret_value() if settings.sasl_password else None
    return options


async def end_offsets(
    consumer: AIOKafkaConsumer,
    partitions: Sequence[TopicPartition],
    *,
    probe_ms: int = 300,
    bound_s: float = 30.0,
) -> dict[TopicPartition, int]:
    """The offset after the last record of each (assigned) partition, also on a broker that under-reports it.

    Kafka's ``ListOffsets(latest)`` is exact. The embedded tansu broker answers it with one past the *first* record
    of the partition's last produce batch, so the other records of a multi-record batch (a producer sends several
    at once whenever records queue up behind a request in flight) lie beyond the reported end, and a reader that
    stops there misses them. So the reported end is taken as a lower bound, and the partitions are then read from it
    until fetches bring nothing more (two empty fetches of ``probe_ms`` on an exact broker). Moves the consumer's
    positions: callers seek afterwards.
    """
    partitions = list(partitions)
    ends = dict(await consumer.end_offsets(partitions))
    if not partitions:
        return ends
    for tp in partitions:
        consumer.seek(tp, ends[tp])
    with contextlib.suppress(TimeoutError):  # a partition written faster than it is read: its end as far as seen
        async with asyncio.timeout(bound_s):
            quiet = 0
            while quiet < 2:  # two empty fetches in a row: the first may go out before the connection is ready
                batch = await consumer.getmany(*partitions, timeout_ms=probe_ms, max_records=10_000)
                quiet = 0 if batch else quiet + 1
                for tp, records in batch.items():
                    if records:
                        ends[tp] = max(ends[tp], records[-1].offset + 1)
    return ends


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    """A record ready to send; also what the idempotency ledger stores to re-publish after a crash."""

    topic: str
    key: bytes | None
    value: bytes
    headers: h.Headers

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "key": None if self.key is None else self.key.decode("utf-8", "surrogateescape"),
            "value": self.value.decode("utf-8"),
            "headers": [[k, v] for k, v in self.headers.items()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutboundRecord:
        key = data["key"]
        return cls(
            topic=data["topic"],
            key=None if key is None else key.encode("utf-8", "surrogateescape"),
            value=data["value"].encode("utf-8"),
            headers=dict(data["headers"]),
        )


def record_for(envelope: AnyEnvelope, *, topic: str | None = None) -> OutboundRecord:
    """The record of an envelope: keyed by organization, with content-type and event-type headers."""
    return OutboundRecord(
        topic=topic or envelope.TOPIC,
        key=str(envelope.organization_id).encode("utf-8"),
        value=encode_envelope(envelope),
        headers={h.CONTENT_TYPE: h.JSON, h.EVENT_TYPE: envelope.event_type},
    )


def organization_key(organization_id: UUID) -> bytes:
    return str(organization_id).encode("utf-8")


class Publisher:
    """One producer per process. ``send`` returns once the broker acknowledged the record (acks=all).

    Records name logical topics (``batchly.customers``); the publisher adds the configured prefix.
    """

    def __init__(self, settings: KafkaSettings, *, client_id: str, topic_prefix: str = "") -> None:
        self.topic_prefix = topic_prefix
        self._producer = AIOKafkaProducer(
            **client_options(settings, client_id),
            acks="all",
            enable_idempotence=settings.enable_idempotence,
            linger_ms=settings.producer_linger_ms,
            max_request_size=8 * 1024 * 1024,
        )
        self._started = False

    async def start(self) -> None:
        await self._producer.start()
        self._started = True

    async def stop(self) -> None:
        if self._started:
            await self._producer.stop()
            self._started = False

    async def send(self, record: OutboundRecord) -> None:
        await self._producer.send_and_wait(
            self.topic_prefix + record.topic, record.value, key=record.key, headers=h.encode_headers(record.headers)
        )

    async def send_all(self, records: Sequence[OutboundRecord]) -> None:
        """Send many records concurrently; returns when every one is acknowledged (raises on the first failure)."""
        if not records:
            return
        futures = [
            await self._producer.send(
                self.topic_prefix + r.topic, r.value, key=r.key, headers=h.encode_headers(r.headers)
            )
            for r in records
        ]
        await asyncio.gather(*futures)

    async def publish(self, *envelopes: AnyEnvelope) -> None:
        await self.send_all([record_for(e) for e in envelopes])


async def ensure_topics(
    settings: KafkaSettings, topic_settings: TopicSettings, specs: Sequence[TopicSpec], *, client_id: str
) -> list[str]:
    """Create the topics that do not exist yet, with explicit partition counts. Returns the names created.

    ``specs`` name logical topics; the configured prefix is added here.
    """
    specs = [TopicSpec(topic_settings.prefix + s.name, s.partitions) for s in specs]
    admin = AIOKafkaAdminClient(**client_options(settings, client_id))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if not missing:
            return []
        new = [NewTopic(s.name, s.partitions, topic_settings.replication_factor) for s in missing]
        log.info("creating %d topic(s): %s", len(new), ", ".join(s.name for s in missing))
        response = await admin.create_topics(new)
        failures = [
            (topic, code) for topic, code, *_ in response.topic_errors if code not in (0, _TOPIC_ALREADY_EXISTS)
        ]
        if failures:
            raise RuntimeError(f"could not create topics: {failures}")
        return [s.name for s in missing]
    finally:
        await admin.close()
