"""A running platform for the operations tests (the e2e platform, reused) and the CLI pointed at it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from typer.testing import CliRunner, Result

from qbsync.contracts.envelope import AnyEnvelope
from qbsync.runtime.kafka import record_for
from qbsync.simulate import BatchlyWorld, WorldConfig
from qbsync.topics import QBSYNC_SYNC_RESULTS
from qbsync_cli.main import app
from tests.e2e.platform import SERVICE_TOKEN, Platform

TERMINAL = ("SyncCompleted", "SyncFailed")


def world(seed: int) -> BatchlyWorld:
    return BatchlyWorld(seed, start=datetime(2026, 3, 2, 8, 0, tzinfo=UTC), config=WorldConfig(hard_case_share=0.0))


def invalid_copy(event: Any) -> Any:
    """A customer event QuickBooks would refuse (a ':' in the name): a permanent failure."""
    payload = event.payload.model_copy(update={"display_name": "Broken: Name Ltd"})
    return event.model_copy(update={"payload": payload, "event_id": uuid.uuid4(), "entity_id": uuid.uuid4()})


@dataclass
class Cli:
    """``qbsync`` run in-process with the platform's environment (what an operator's shell would have)."""

    platform: Platform

    def __call__(self, *args: str) -> Result:
        env = {
            key: value
            for key, value in self.platform.env().items()
            if key.startswith("QBSYNC_") or key in ("PYTHONUNBUFFERED",)
        }
        env |= {"COLUMNS": "220", "QBSYNC_TOKEN_MANAGER__SERVICE_TOKEN": SERVICE_TOKEN}
        return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


async def publish(bootstrap: str, prefix: str, events: Sequence[AnyEnvelope]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for event in events:
            record = record_for(event)
            headers = [(k, v.encode()) for k, v in record.headers.items()]
            await producer.send_and_wait(prefix + record.topic, record.value, key=record.key, headers=headers)
    finally:
        await producer.stop()


async def results(
    bootstrap: str, prefix: str, wanted: Iterable[uuid.UUID], *, count: int = 1, timeout: float = 90
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Terminal results (SyncCompleted / SyncFailed) per source event, from the start of the topic, until every
    wanted event has ``count`` distinct ones (de-duplicated by result event id)."""
    want = set(wanted)
    found: dict[uuid.UUID, dict[str, dict[str, Any]]] = {w: {} for w in want}
    consumer = AIOKafkaConsumer(
        prefix + QBSYNC_SYNC_RESULTS, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        async with asyncio.timeout(timeout):
            while any(len(found[w]) < count for w in want):
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    for record in records:
                        document = json.loads(record.value or b"")
                        source = uuid.UUID(document["payload"]["source_event_id"])
                        if document["event_type"] in TERMINAL and source in found:
                            found[source][document["event_id"]] = document
    finally:
        await consumer.stop()
    return {source: list(docs.values()) for source, docs in found.items()}
