"""The retry ladder over a real broker: tiers, dead letters, headers, ledger history — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import pytest

from qbsync.contracts.batchly import CustomerCreated
from qbsync.runtime import Completed, HandlerContext, HandlerRegistry, PermanentError, TransientError
from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync.topics import BATCHLY_CUSTOMERS, QBSYNC_SYNC_RESULTS, dead_letter_topic, retry_topic
from tests.integration.harness import (
    FAST_RUNTIME,
    Kafka,
    customer_created,
    insert_effect,
    running_runtime,
    service_topic_names,
    wait_for,
)

pytestmark = [pytest.mark.kafka]

SERVICE = "ladder-test"


async def _setup(kafka: Kafka) -> None:
    await kafka.create(*service_topic_names(SERVICE, [BATCHLY_CUSTOMERS], 2), QBSYNC_SYNC_RESULTS)


def _results(records: list[Any], event_type: str) -> list[dict[str, Any]]:
    decoded = [json.loads(r.value) for r in records]
    return [d for d in decoded if d["event_type"] == event_type]


async def test_transient_twice_then_success_completes_on_attempt_three_through_both_tiers(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings, database_settings: DatabaseSettings
) -> None:
    calls: list[tuple[int, str]] = []
    registry = HandlerRegistry()

    @registry.on(CustomerCreated)
    async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
        calls.append((ctx.attempt, ctx.topic))
        if ctx.attempt < 3:
            raise TransientError(f"QBO timed out (attempt {ctx.attempt})", code="timeout")

        async def persist(conn: Any) -> None:
            await insert_effect(conn, event.event_id, event.entity_id, "created")

        return Completed(action="created", qbo_id="58", persist=persist)

    event = customer_created()
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await _setup(kafka)
        async with running_runtime(
            service=SERVICE,
            topics=[BATCHLY_CUSTOMERS],
            registry=registry,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=database_settings,
        ) as rt:
            await kafka.publish(event)
            results = await kafka.read(QBSYNC_SYNC_RESULTS, expect=3)
            completed = _results(results, "SyncCompleted")
            retrying = _results(results, "SyncStatusChanged")
            assert len(completed) == 1, "exactly one completion"
            assert completed[0]["payload"]["qbo_id"] == "58"
            assert completed[0]["payload"]["attempt"] == 3
            assert completed[0]["causation_id"] == str(event.event_id)
            assert [r["payload"]["status"] for r in retrying] == ["retrying", "retrying"]
            assert all(r["payload"]["next_attempt_at"] for r in retrying)

            assert calls == [
                (1, BATCHLY_CUSTOMERS),
                (2, retry_topic(SERVICE, 1)),
                (3, retry_topic(SERVICE, 2)),
            ]
            tier1 = await kafka.read(retry_topic(SERVICE, 1), expect=1)
            tier2 = await kafka.read(retry_topic(SERVICE, 2), expect=1)
            for record, attempt in ((tier1[0], "2"), (tier2[0], "3")):
                assert record.key == str(event.organization_id).encode(), "same key as the original"
                assert json.loads(record.value or b"") == json.loads(event.model_dump_json()), "same payload"
                headers = record.headers
                assert headers["qbsync-attempt"] == attempt
                assert headers["qbsync-original-topic"] == BATCHLY_CUSTOMERS
                assert headers["qbsync-original-partition"].isdigit()
                assert headers["qbsync-original-offset"] == "0"
                assert headers["qbsync-error-class"] == "transient"
                assert headers["qbsync-error-code"] == "timeout"
                assert "QBO timed out" in headers["qbsync-error-message"]
                assert headers["qbsync-consumer-group"] == rt.group
                assert headers["event-type"] == "CustomerCreated"
                assert headers["content-type"] == "application/json"
                due = datetime.fromisoformat(headers["qbsync-due-at"].replace("Z", "+00:00"))
                first = datetime.fromisoformat(headers["qbsync-first-failure-at"].replace("Z", "+00:00"))
                assert due > first
            # the first-failure time is carried along the ladder unchanged
            assert tier1[0].headers["qbsync-first-failure-at"] == tier2[0].headers["qbsync-first-failure-at"]

            ledger = await wait_for(rt.ledger_rows)
            assert len(ledger) == 1
            row = ledger[0]
            assert (row.status, row.attempts, row.qbo_id, row.action) == ("completed", 3, "58", "created")
            assert row.completed_at is not None
            history = await rt.attempts(row.id)
            assert [(a.attempt, a.outcome) for a in history] == [(1, "retry"), (2, "retry"), (3, "completed")]
            assert history[0].error_code == "timeout"
            assert len(await rt.effect_rows()) == 1


async def test_always_transient_ends_in_dead_letter_after_three_attempts_with_everything_committed(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings, database_settings: DatabaseSettings
) -> None:
    registry = HandlerRegistry()
    attempts: list[int] = []

    @registry.on(CustomerCreated)
    async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
        attempts.append(ctx.attempt)
        raise TransientError("QuickBooks answered 503", code="503")

    event = customer_created(name="O'Brien & Sons")
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await _setup(kafka)
        async with running_runtime(
            service=SERVICE,
            topics=[BATCHLY_CUSTOMERS],
            registry=registry,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=database_settings,
        ) as rt:
            await kafka.publish(event)
            dead = await kafka.read(dead_letter_topic(SERVICE), expect=1)
            assert len(dead) == 1
            record = dead[0]
            assert record.key == str(event.organization_id).encode()
            assert record.value == event.model_dump_json().encode(), "the original payload, byte for byte"
            assert record.headers["qbsync-attempt"] == "3"
            assert record.headers["qbsync-original-topic"] == BATCHLY_CUSTOMERS
            assert record.headers["qbsync-error-class"] == "transient"
            assert record.headers["event-type"] == "CustomerCreated"
            assert attempts == [1, 2, 3]

            failed = _results(await kafka.read(QBSYNC_SYNC_RESULTS, expect=3), "SyncFailed")
            assert len(failed) == 1
            assert failed[0]["payload"]["manual_retry_available"] is True
            assert failed[0]["payload"]["dead_letter_topic"] == dead_letter_topic(SERVICE)

            ledger = await wait_for(rt.ledger_rows)
            assert (ledger[0].status, ledger[0].attempts, ledger[0].manual_retry_available) == ("failed", 3, True)
            history = await rt.attempts(ledger[0].id)
            assert [a.outcome for a in history] == ["retry", "retry", "dead_letter"]

            # nothing is left uncommitted: every consumed topic's group offset reaches its end offset
            for topic in (BATCHLY_CUSTOMERS, retry_topic(SERVICE, 1), retry_topic(SERVICE, 2)):
                ends = await kafka.end_offsets(topic)

                async def caught_up(topic: str = topic, ends: dict[int, int] = ends) -> bool:
                    committed = await kafka.committed(rt.group, topic)
                    return all((committed.get(p) or 0) == end for p, end in ends.items())

                await wait_for(caught_up, timeout=10)


async def test_permanent_error_is_dead_lettered_after_one_attempt(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings, database_settings: DatabaseSettings
) -> None:
    registry = HandlerRegistry()
    attempts: list[int] = []

    @registry.on(CustomerCreated)
    async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
        attempts.append(ctx.attempt)
        raise PermanentError(
            "DisplayName is held by a vendor", code="6240", field="display_name", hint="Rename the customer"
        )

    event = customer_created()
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await _setup(kafka)
        async with running_runtime(
            service=SERVICE,
            topics=[BATCHLY_CUSTOMERS],
            registry=registry,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=database_settings,
        ) as rt:
            await kafka.publish(event)
            dead = await kafka.read(dead_letter_topic(SERVICE), expect=1)
            assert dead[0].headers["qbsync-attempt"] == "1"
            assert dead[0].headers["qbsync-error-class"] == "permanent"
            assert dead[0].headers["qbsync-error-code"] == "6240"
            assert attempts == [1]
            failed = _results(await kafka.read(QBSYNC_SYNC_RESULTS, expect=1), "SyncFailed")
            assert failed[0]["payload"]["hint"] == "Rename the customer"
            ledger = await wait_for(rt.ledger_rows)
            assert (ledger[0].status, ledger[0].attempts, ledger[0].error_class) == ("failed", 1, "permanent")
            # nothing reached a retry tier
            assert await kafka.end_offsets(retry_topic(SERVICE, 1)) == dict.fromkeys(range(3), 0)


async def test_copies_of_a_failed_event_are_acknowledged_without_a_second_failure_or_dead_letter(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings, database_settings: DatabaseSettings
) -> None:
    """One terminal outcome per event, also for a failure: redelivered copies of a dead-lettered event (or a copy
    that was in flight beside it) do not fail it again (found by the reliability campaign: two SyncFailed)."""
    registry = HandlerRegistry()
    attempts: list[int] = []

    @registry.on(CustomerCreated)
    async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
        attempts.append(ctx.attempt)
        raise PermanentError("DisplayName is held by a vendor", code="6240", field="display_name")

    event = customer_created()
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await _setup(kafka)
        async with running_runtime(
            service=SERVICE,
            topics=[BATCHLY_CUSTOMERS],
            registry=registry,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=database_settings,
        ) as rt:
            await kafka.publish(event)
            await kafka.read(dead_letter_topic(SERVICE), expect=1)
            await kafka.publish(event)  # at-least-once producers: the same event twice more
            await kafka.publish(event)
            ends = await kafka.end_offsets(BATCHLY_CUSTOMERS)
            assert sum(ends.values()) == 3

            async def caught_up() -> bool:
                committed = await kafka.committed(rt.group, BATCHLY_CUSTOMERS)
                return all((committed.get(p) or 0) == end for p, end in ends.items())

            await wait_for(caught_up, timeout=20)
            assert attempts == [1], "the copies were acknowledged without running the handler"
            assert sum((await kafka.end_offsets(dead_letter_topic(SERVICE))).values()) == 1
            assert len(_results(await kafka.read(QBSYNC_SYNC_RESULTS, expect=1), "SyncFailed")) == 1
            ledger = await wait_for(rt.ledger_rows)
            assert [a.outcome for a in await rt.attempts(ledger[0].id)] == ["dead_letter"]


async def test_redelivered_event_is_acknowledged_without_repeating_its_effect(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings, database_settings: DatabaseSettings
) -> None:
    registry = HandlerRegistry()
    handled: list[uuid.UUID] = []

    @registry.on(CustomerCreated)
    async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
        handled.append(event.event_id)

        async def persist(conn: Any) -> None:
            await insert_effect(conn, event.event_id, event.entity_id, "created")

        return Completed(action="created", qbo_id="7", persist=persist)

    event = customer_created()
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await _setup(kafka)
        async with running_runtime(
            service=SERVICE,
            topics=[BATCHLY_CUSTOMERS],
            registry=registry,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=database_settings,
        ) as rt:
            await kafka.publish(event)
            await kafka.read(QBSYNC_SYNC_RESULTS, expect=1)
            await kafka.publish(event)  # the same event again (producer retry, replay, ...)
            results = await kafka.read(QBSYNC_SYNC_RESULTS, expect=2)
            completed = _results(results, "SyncCompleted")
            assert len(completed) == 2
            assert completed[0]["event_id"] == completed[1]["event_id"], "the re-published result is identical"
            assert handled == [event.event_id], "the handler ran once"
            assert len(await rt.effect_rows()) == 1
            history = await rt.attempts((await rt.ledger_rows())[0].id)
            assert [a.outcome for a in history] == ["completed"]


async def test_retry_delays_are_configurable_per_tier(topic_settings: TopicSettings) -> None:
    assert FAST_RUNTIME.max_attempts == 3
    assert FAST_RUNTIME.retry_delays_seconds == (0.5, 1.0)
    assert retry_topic(SERVICE, 1) == "qbsync.ladder-test.retry.1"
