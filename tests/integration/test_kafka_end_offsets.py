"""Reading a topic to its end also where the broker under-reports the end (the embedded tansu broker).

Found by the reliability campaign: a dead letter written in the same produce batch as another one was missing from
the campaign's read of the dead-letter topic — tansu answers ``ListOffsets(latest)`` with one past the *first*
record of the last batch. The same read is behind ``qbsync-ops dead-letters list/replay``, so operators would not
have seen such a record either.
"""

from __future__ import annotations

import asyncio
import json
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from qbsync.runtime.kafka import end_offsets, ensure_topics
from qbsync.settings import KafkaSettings, Settings, TopicSettings
from qbsync.topics import TopicSpec, dead_letter_topic
from qbsync_cli.ops.deadletters import read_dead_letters

SERVICE = "invoice-sync"


async def _produce_single_then_batch(bootstrap: str, topic: str, key: bytes) -> None:
    """One record alone, then three sent together (linger: they leave as one produce batch)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=100)
    await producer.start()
    try:
        await producer.send_and_wait(topic, _value(0), key=key)
        futures = [await producer.send(topic, _value(n), key=key) for n in (1, 2, 3)]
        offsets = [meta.offset for meta in await asyncio.gather(*futures)]
    finally:
        await producer.stop()
    assert offsets == [1, 2, 3]


def _value(n: int) -> bytes:
    return json.dumps({"event_id": str(uuid.UUID(int=n + 1)), "n": n}).encode()


async def test_end_offsets_count_every_record_of_a_multi_record_batch(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings
) -> None:
    logical = f"probe.{uuid.uuid4().hex[:8]}"
    topic = topic_settings.prefix + logical
    await ensure_topics(kafka_settings, topic_settings, [TopicSpec(logical, 1)], client_id="test")
    await _produce_single_then_batch(kafka_settings.bootstrap_servers, topic, b"k")

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        ends = await end_offsets(consumer, [tp])
        assert ends[tp] == 4  # (tansu's own answer is 2)
        consumer.seek(tp, 0)
        seen = []
        async with asyncio.timeout(10):
            while len(seen) < 4:
                seen += [r.offset for r in (await consumer.getmany(tp, timeout_ms=200)).get(tp, [])]
        assert seen == [0, 1, 2, 3]
    finally:
        await consumer.stop()


async def test_the_ops_tool_lists_every_dead_letter_of_a_multi_record_batch(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings
) -> None:
    settings = Settings(kafka=kafka_settings, topics=topic_settings)
    await ensure_topics(kafka_settings, topic_settings, [TopicSpec(dead_letter_topic(SERVICE), 1)], client_id="test")
    await _produce_single_then_batch(
        kafka_settings.bootstrap_servers, topic_settings.prefix + dead_letter_topic(SERVICE), b"org"
    )
    records, cursor = await read_dead_letters(settings, SERVICE)
    assert [r.offset for r in records] == [0, 1, 2, 3]
    assert cursor == {}
