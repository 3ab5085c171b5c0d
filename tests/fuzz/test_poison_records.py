"""Issue 9, poison: hypothesis-generated bad records produced to the real consumers (services as processes).

Each example is a batch of bad records (``tests/fuzz/poison.py``) spread over the topics of customer-sync,
invoice-sync and pull-sync, followed by one valid event per service. It passes when every bad record is in its
service's dead-letter topic — found by its original topic, partition and offset — with an error class and a reason,
every valid event after the batch reached its outcome (the consumer kept going), and no process died.
``QBSYNC_FUZZ_EXAMPLES`` raises the number of batches (``make reliability`` runs more).
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbsync.contracts.envelope import AnyEnvelope
from qbsync.runtime.kafka import record_for
from qbsync.simulate import BatchlyWorld, WorldConfig
from qbsync.topics import QBSYNC_SYNC_RESULTS, dead_letter_topic
from tests.e2e.platform import Platform, platform
from tests.fuzz.poison import CONSUMER_OF, Poison, poison_records

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

EXAMPLES = int(os.environ.get("QBSYNC_FUZZ_EXAMPLES", "3"))
BATCH = 14
SERVICES = ("customer-sync", "invoice-sync", "pull-sync")


class Target:
    def __init__(self, plat: Platform, bootstrap: str) -> None:
        self.plat = plat
        self.bootstrap = bootstrap
        self.world = BatchlyWorld(17, start=datetime.now(UTC), config=WorldConfig(hard_case_share=0, invalid_share=0))
        self.org = self.world.add_organization()
        self.customer = self.world.create_customer(self.org.entity_id)
        self.item = self.world.create_item(self.org.entity_id)
        self.batches = 0
        #: The valid envelopes the poison is made from (fixed, so every example draws from the same strategy).
        self.bases: list[AnyEnvelope] = self.sentinels()

    def sentinels(self) -> list[AnyEnvelope]:
        """Fresh valid events, one per service: a customer, a sales order (ignored by design), an item push (the
        same catalog item again under a new event id: QuickBooks has it, so it is linked)."""
        org = self.org.entity_id
        self.batches += 1
        item = self.item.model_copy(
            update={"event_id": uuid.uuid4(), "entity_version": self.item.entity_version + self.batches}
        )
        return [self.world.create_customer(org), self.world.create_sales_order(org), item]


@pytest.fixture(scope="module")
def target(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp("poison")
    with platform(kafka_bootstrap, workdir) as plat:
        plat.start_emulator("--no-limits")
        t = Target(plat, kafka_bootstrap)
        realm = plat.create_company(name="Poison Co")
        plat.start("token-manager")
        plat.connect(t.org.entity_id, realm)
        for name in SERVICES:
            plat.start(name)
        asyncio.run(_produce(kafka_bootstrap, plat.prefix, [_record(t.org), _record(t.customer)]))
        yield t
        for name in SERVICES:
            assert plat.processes[name].popen.poll() is None, plat.processes[name].tail()


def _record(envelope: AnyEnvelope) -> Poison:
    record = record_for(envelope)
    return Poison(record.topic, record.key, record.value, [(k, v.encode()) for k, v in record.headers.items()], "valid")


async def _produce(bootstrap: str, prefix: str, records: list[Poison]) -> list[tuple[str, int, int]]:
    """Produce in order; returns (topic, partition, offset) of each."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, max_request_size=2_000_000)
    await producer.start()
    try:
        placed = []
        for r in records:
            meta = await producer.send_and_wait(prefix + r.topic, r.value, key=r.key, headers=r.headers)
            placed.append((r.topic, meta.partition, meta.offset))
        return placed
    finally:
        await producer.stop()


async def _read(bootstrap: str, topic: str, until: Any, timeout: float) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[Any] = []
    try:
        async with asyncio.timeout(timeout):
            while not until(found):
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    found.extend(records)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return found


def _origin(record: Any, prefix: str) -> tuple[str, int, int]:
    """Where a dead letter first arrived (topic without the run's prefix, partition, offset)."""
    headers = {k: (v or b"").decode("utf-8", "replace") for k, v in record.headers}
    topic = headers.get("qbsync-original-topic", "").removeprefix(prefix)
    return topic, int(headers.get("qbsync-original-partition", -1)), int(headers.get("qbsync-original-offset", -1))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_every_poison_record_is_dead_lettered_with_a_reason_and_consumers_keep_going(
    target: Target, data: st.DataObject
) -> None:
    plat, prefix = target.plat, target.plat.prefix
    bad = data.draw(st.lists(poison_records(target.bases), min_size=BATCH, max_size=BATCH), label="poison")
    sentinels = target.sentinels()
    placed = asyncio.run(_produce(target.bootstrap, prefix, [*bad, *(_record(e) for e in sentinels)]))
    expected = dict(zip(placed, bad, strict=False))

    wanted = {str(e.event_id) for e in sentinels}

    def sentinels_done(records: list[Any]) -> bool:
        done = {
            json.loads(r.value)["payload"].get("source_event_id")
            for r in records
            if json.loads(r.value)["event_type"] in ("SyncCompleted", "SyncStatusChanged")
            and json.loads(r.value)["payload"].get("status", "x") in ("x", "ignored")
        }
        return wanted <= done

    results = asyncio.run(_read(target.bootstrap, prefix + QBSYNC_SYNC_RESULTS, sentinels_done, 90))
    assert sentinels_done(results), "a consumer stopped after a poison record"

    letters: dict[tuple[str, int, int], Any] = {}
    for service in SERVICES:
        want = sum(1 for p in bad if p.service == service)

        def enough(records: list[Any], service: str = service, want: int = want) -> bool:
            return len({_origin(r, prefix) for r in records if _origin(r, prefix) in expected}) >= want

        for record in asyncio.run(_read(target.bootstrap, prefix + dead_letter_topic(service), enough, 60)):
            letters[_origin(record, prefix)] = record
    for where, poison in expected.items():
        letter = letters.get(where)
        assert letter is not None, f"{poison.kind} record at {where} was not dead-lettered by {poison.service}"
        headers = {k: (v or b"").decode("utf-8", "replace") for k, v in letter.headers}
        assert headers.get("qbsync-error-class") in ("malformed", "permanent"), (poison.kind, headers)
        assert headers.get("qbsync-error-message"), (poison.kind, headers)
        assert headers.get("qbsync-service") == poison.service
    for name in SERVICES:
        assert plat.processes[name].popen.poll() is None, plat.processes[name].tail()
    assert set(CONSUMER_OF.values()) == set(SERVICES)
