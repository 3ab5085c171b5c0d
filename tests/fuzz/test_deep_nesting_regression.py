"""Regression (found by the poison fuzzer): a record nested deeper than Python's stack killed the whole consumer.

The JSON parser of the envelope refuses it (``json_invalid``), and building the reason then re-parsed it with
``json.loads``, which raised ``RecursionError`` — not a ``ValueError`` — out of the fetch loop: the service exited,
and after every restart met the same record again. One bad record stopped a service for every organization. Now it
is dead-lettered as ``not_json`` ("nested too deeply") and the next record is processed.
"""

from __future__ import annotations

import uuid

import pytest

from qbsync.contracts.batchly import CustomerCreated
from qbsync.contracts.codec import DecodeError, decode_envelope
from qbsync.runtime import Completed, HandlerContext, HandlerRegistry
from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync.topics import BATCHLY_CUSTOMERS, QBSYNC_SYNC_RESULTS, dead_letter_topic
from tests.integration.harness import Kafka, customer_created, running_runtime, service_topic_names, wait_for

DEPTH = 100_000


def _deep(valid: bytes) -> bytes:
    return valid[:-1] + b', "extra": ' + b"[" * DEPTH + b"]" * DEPTH + b"}"


def test_a_deeply_nested_record_is_a_decode_error_not_a_crash() -> None:
    valid = customer_created().model_dump_json().encode()
    with pytest.raises(DecodeError) as caught:
        decode_envelope(_deep(valid))
    assert caught.value.reason == "not_json"
    assert "nested too deeply" in str(caught.value)


@pytest.mark.kafka
async def test_a_deeply_nested_record_is_dead_lettered_and_the_consumer_keeps_going(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings, database_settings: DatabaseSettings
) -> None:
    service = "deep-nesting-test"
    handled: list[uuid.UUID] = []
    registry = HandlerRegistry()

    @registry.on(CustomerCreated)
    async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
        handled.append(event.event_id)
        return Completed(action="created", qbo_id="1")

    org = uuid.uuid4()
    good = customer_created(org)
    headers = [("content-type", b"application/json"), ("event-type", b"CustomerCreated")]
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await kafka.create(*service_topic_names(service, [BATCHLY_CUSTOMERS], 2), QBSYNC_SYNC_RESULTS)
        async with running_runtime(
            service=service,
            topics=[BATCHLY_CUSTOMERS],
            registry=registry,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=database_settings,
        ):
            poison = _deep(customer_created(org).model_dump_json().encode())
            await kafka.produce(BATCHLY_CUSTOMERS, poison, key=str(org).encode(), headers=headers, partition=0)
            await kafka.publish(good, partition=0)
            await wait_for(lambda: handled == [good.event_id])
            dead = await kafka.read(dead_letter_topic(service), expect=1)
            assert dead[0].headers["qbsync-error-class"] == "malformed"
            assert dead[0].headers["qbsync-error-code"] == "not_json"
