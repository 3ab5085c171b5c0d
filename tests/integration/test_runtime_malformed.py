"""Malformed records are dead-lettered with a clear reason, and the consumer keeps going."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from qbsync.contracts.batchly import CustomerCreated, SalesOrderCreated, SalesOrderPayload
from qbsync.runtime import Completed, HandlerContext, HandlerRegistry
from qbsync.settings import DatabaseSettings, KafkaSettings, RuntimeSettings, TopicSettings
from qbsync.topics import BATCHLY_CUSTOMERS, QBSYNC_SYNC_RESULTS, dead_letter_topic
from tests.integration.harness import (
    FAST_RUNTIME,
    Kafka,
    customer_created,
    running_runtime,
    service_topic_names,
    wait_for,
)

pytestmark = [pytest.mark.kafka]

SERVICE = "malformed-test"


def _good_headers(event_type: str = "CustomerCreated") -> list[tuple[str, bytes | None]]:
    return [("content-type", b"application/json"), ("event-type", event_type.encode())]


async def test_each_kind_of_malformed_record_is_dead_lettered_with_its_reason_and_the_next_good_one_is_processed(
    kafka_settings: KafkaSettings, topic_settings: TopicSettings, database_settings: DatabaseSettings
) -> None:
    handled: list[uuid.UUID] = []
    registry = HandlerRegistry()

    @registry.on(CustomerCreated)
    async def handle(ctx: HandlerContext, event: CustomerCreated) -> Completed:
        handled.append(event.event_id)
        return Completed(action="created", qbo_id=str(len(handled)))

    org = uuid.uuid4()
    key = str(org).encode()
    good = customer_created(org)
    valid = json.loads(good.model_dump_json())

    def variant(**changes: Any) -> bytes:
        document = {**valid, **changes}
        return json.dumps(document).encode()

    bad_money = {**valid, "payload": {**valid["payload"], "display_name": 42}}
    wrong_version = variant(schema_version=9)
    cases: list[tuple[str, bytes | None, list[tuple[str, bytes | None]], bytes | None]] = [
        ("not_json", b"{this is not json", _good_headers(), key),
        ("not_an_object", b"[1, 2, 3]", _good_headers(), key),
        ("empty", None, _good_headers(), key),
        ("schema_violation", json.dumps(bad_money).encode(), _good_headers(), key),
        ("schema_violation", variant(surprise_field=True), _good_headers(), key),
        ("unknown_event_type", variant(event_type="CustomerTeleported"), _good_headers("CustomerTeleported"), key),
        ("unsupported_schema_version", wrong_version, _good_headers(), key),
        ("bad_headers", variant(), [("content-type", b"application/json")], key),  # event-type missing
        ("bad_headers", variant(), [*_good_headers(), ("trace", b"\xff\xfe\xfa")], key),  # not UTF-8
        ("header_mismatch", variant(), _good_headers("CustomerUpdated"), key),
        ("header_mismatch", variant(), _good_headers(), b"some-other-key"),
        ("oversized", variant(payload={**valid["payload"], "notes": "x" * 9_000}), _good_headers(), key),
        ("wrong_topic", _sales_order(org), _good_headers("SalesOrderCreated"), key),
    ]
    settings = RuntimeSettings(**{**FAST_RUNTIME.model_dump(), "max_event_bytes": 8_192})
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await kafka.create(*service_topic_names(SERVICE, [BATCHLY_CUSTOMERS], 2), QBSYNC_SYNC_RESULTS)
        async with running_runtime(
            service=SERVICE,
            topics=[BATCHLY_CUSTOMERS],
            registry=registry,
            kafka=kafka_settings,
            topic_settings=topic_settings,
            database=database_settings,
            runtime_settings=settings,
        ) as rt:
            # all on one partition, in order, with the good record last
            for _reason, value, headers, record_key in cases:
                await kafka.produce(BATCHLY_CUSTOMERS, value, key=record_key, headers=headers, partition=0)
            await kafka.publish(good, partition=0)

            await wait_for(lambda: handled == [good.event_id])
            dead = await kafka.read(dead_letter_topic(SERVICE), expect=len(cases))
            assert len(dead) == len(cases)
            dead.sort(key=lambda r: int(r.headers["qbsync-original-offset"]))
            for (reason, value, _headers, record_key), record in zip(cases, dead, strict=True):
                assert record.headers["qbsync-error-class"] == "malformed"
                assert record.headers["qbsync-error-code"] == reason, record.headers["qbsync-error-message"]
                assert record.headers["qbsync-error-message"], "a clear reason"
                assert record.value == (value or b""), "the original bytes are kept"
                assert record.key == record_key
                assert record.headers["qbsync-original-topic"] == BATCHLY_CUSTOMERS
            # the non-UTF-8 header survives as base64 so the dead-letter record stays readable
            assert any("trace.base64" in r.headers for r in dead)
            messages = {r.headers["qbsync-error-code"]: r.headers["qbsync-error-message"] for r in dead}
            assert "event-type" in messages["bad_headers"] or "UTF-8" in messages["bad_headers"]
            assert "CustomerTeleported" in messages["unknown_event_type"]
            assert "8192" in messages["oversized"]

            ledger = await wait_for(lambda: _ledger_count(rt, len(cases) + 1))
            statuses = sorted(row.status for row in ledger)
            assert statuses.count("failed") == len(cases)
            assert statuses.count("completed") == 1
            completed = [
                json.loads(r.value or b"")
                for r in await kafka.read(QBSYNC_SYNC_RESULTS, expect=1)
                if json.loads(r.value or b"")["event_type"] == "SyncCompleted"
            ]
            assert [c["causation_id"] for c in completed] == [str(good.event_id)]


def _sales_order(org: uuid.UUID) -> bytes:
    """A valid SalesOrderCreated — valid, but it belongs on batchly.orders, not batchly.customers."""
    order = SalesOrderCreated(
        event_id=uuid.uuid4(),
        event_type="SalesOrderCreated",
        schema_version=1,
        occurred_at=datetime.now(UTC),
        organization_id=org,
        entity_id=uuid.uuid4(),
        entity_version=1,
        payload=SalesOrderPayload(
            order_id=uuid.uuid4(),
            order_number="SO-1",
            customer_id=uuid.uuid4(),
            order_date=date(2026, 1, 2),
            status="approved",
            lines=[],
            total=Decimal("0.00"),
        ),
    )
    return order.model_dump_json().encode()


async def _ledger_count(rt: Any, expected: int) -> list[Any] | None:
    rows: list[Any] = await rt.ledger_rows()
    return rows if len(rows) >= expected else None
