"""Producing envelopes (optionally with a forged key) and reading a topic from its start, for the e2e campaign tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from qbsync.contracts.envelope import AnyEnvelope
from qbsync.runtime.kafka import record_for

__all__ = ["produce", "read_topic"]


async def produce(bootstrap: str, prefix: str, records: list[tuple[AnyEnvelope, bytes | None]]) -> None:
    """Each envelope as its record; a non-None second element replaces the record key (a forged key)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for envelope, key in records:
            record = record_for(envelope)
            await producer.send_and_wait(
                prefix + record.topic,
                record.value,
                key=key if key is not None else record.key,
                headers=[(k, v.encode()) for k, v in record.headers.items()],
            )
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str, topic: str, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 60
) -> list[dict[str, Any]]:
    """Documents of ``topic`` from its start until ``until(documents)`` holds (bounded)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    documents: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while not until(documents):
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    documents.extend(json.loads(r.value) for r in records)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return documents
