"""The operator CLI against a running platform (separate processes, a real broker, the emulator over HTTP).

An outage dead-letters one customer, an invalid customer fails for good; the CLI shows both (status, history,
failed with hints, dlq list/show), replays the outage's record after it (dry run first), a second replay of the
same record (the cursor reset, as after a crash between send and commit) changes nothing in QuickBooks, retry and
retry-all report progress and a summary, manual syncs get their answer, and doctor reads the company's set-up.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from qbsync.topics import dead_letter_topic
from qbsync_cli.ops.deadletters import replay_group
from tests.e2e.platform import Platform, platform
from tests.ops.stack import Cli, invalid_copy, publish, results, world

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    w = world(seed=81)
    org, other = w.add_organization(), w.add_organization()
    customers = [w.create_customer(org.entity_id) for _ in range(4)]
    broken = invalid_copy(w.create_customer(org.entity_id))
    with platform(kafka_bootstrap, Path(tmp_path_factory.mktemp("ops"))) as plat:
        plat.start_emulator("--no-limits")
        realm = plat.create_company(name="Ops Co")
        other_realm = plat.create_company(name="Renumbering Co", custom_txn_numbers=False)
        plat.start("token-manager")
        plat.connect(org.entity_id, realm)
        plat.connect(other.entity_id, other_realm)
        plat.start("customer-sync")
        prefix = plat.prefix
        asyncio.run(publish(kafka_bootstrap, prefix, [org, other, *customers[:3]]))
        asyncio.run(results(kafka_bootstrap, prefix, [c.event_id for c in customers[:3]]))
        # the outage: every write to QuickBooks answers 503 until the ladder (3 attempts) is exhausted
        plat.admin("POST", "/faults", json={"kind": "http_error", "status": 503, "operation": "create", "next_n": 3})
        asyncio.run(publish(kafka_bootstrap, prefix, [customers[3], broken]))
        outcomes = asyncio.run(results(kafka_bootstrap, prefix, [customers[3].event_id, broken.event_id]))
        assert [d["event_type"] for d in outcomes[customers[3].event_id]] == ["SyncFailed"]
        assert [d["event_type"] for d in outcomes[broken.event_id]] == ["SyncFailed"]
        yield {
            "plat": plat,
            "cli": Cli(plat),
            "bootstrap": kafka_bootstrap,
            "org": org.entity_id,
            "other": other.entity_id,
            "realm": realm,
            "outage": customers[3],
            "broken": broken,
        }


def customers_in_qbo(plat: Platform, realm: str) -> list[dict[str, Any]]:
    return plat.rows(realm, "Customer")


def metric(plat: Platform, service: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{plat.processes[service].url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_status_history_and_failed_show_the_dashboard_errors_and_hints(stack: dict[str, Any]) -> None:
    cli, org = stack["cli"], stack["org"]
    status = cli("status", str(org))
    assert status.exit_code == 0, status.output
    assert "QuickBooks Sync Dashboard" in status.output
    assert "Connection Status: ✅ Connected" in status.output
    assert "Customers: 3 synced, 2 failed" in status.output
    assert "2 customers failed" in status.output
    assert f"qbsync retry-all --org {org}" in status.output

    history = cli("history", "--org", str(org))
    assert history.exit_code == 0, history.output
    assert "5 sync(s)" in history.output
    assert history.output.count("completed") == 3

    failed = cli("failed", "--org", str(org))
    assert failed.exit_code == 0, failed.output
    assert str(stack["outage"].event_id) in failed.output
    assert str(stack["broken"].event_id) in failed.output
    assert "permanent" in failed.output
    assert "retried automatically" in failed.output, "the transient failure's hint"
    assert "2 failed sync(s)" in failed.output


def test_dead_letters_of_an_outage_replay_once_and_a_second_replay_duplicates_nothing(stack: dict[str, Any]) -> None:
    cli, plat, outage = stack["cli"], stack["plat"], stack["outage"]
    listing = cli("dlq", "list", "--service", "customer-sync")
    assert listing.exit_code == 0, listing.output
    assert "2 matching of 2 record(s)" in listing.output
    shown = cli("dlq", "show", "--service", "customer-sync", str(outage.event_id))
    assert shown.exit_code == 0, shown.output
    assert "qbsync-error-class" in shown.output
    assert outage.payload.display_name in shown.output

    dry = cli("dlq", "replay", "--service", "customer-sync", "--error-class", "transient", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"would replay 0:1 CustomerCreated {outage.event_id}" in dry.output, dry.output
    assert len(customers_in_qbo(plat, stack["realm"])) == 3, "a dry run sends nothing"

    done = cli("dlq", "replay", "--service", "customer-sync", "--error-class", "transient")
    assert done.exit_code == 0, done.output
    assert "replayed 1," in done.output
    completed = asyncio.run(results(stack["bootstrap"], plat.prefix, [outage.event_id], count=2))
    assert sorted(d["event_type"] for d in completed[outage.event_id]) == ["SyncCompleted", "SyncFailed"]
    assert len(customers_in_qbo(plat, stack["realm"])) == 4

    again = cli("dlq", "replay", "--service", "customer-sync", "--error-class", "transient")
    assert "replayed 0," in again.output, again.output
    assert "1 already handled" in again.output, "the ledger shows the event completed"
    listing = cli("dlq", "list", "--service", "customer-sync")
    assert "completed" in listing.output, "the listing shows what became of each dead letter"

    # Forced, after a crash between the re-publish and the commit (the cursor is back where it was): the record
    # reaches the service a second time, and the service's idempotency answers it without touching QuickBooks.
    duplicates_before = metric(plat, "customer-sync", "qbsync_events_total", outcome="duplicate")
    asyncio.run(_reset_cursor(stack["bootstrap"], plat.prefix, dead_letter_topic("customer-sync")))
    twice = cli("dlq", "replay", "--service", "customer-sync", "--error-class", "transient", "--force")
    assert "replayed 1," in twice.output, twice.output
    asyncio.run(
        _until(lambda: metric(plat, "customer-sync", "qbsync_events_total", outcome="duplicate") > duplicates_before)
    )
    assert len(customers_in_qbo(plat, stack["realm"])) == 4, "replaying twice creates nothing twice in QuickBooks"
    answers = asyncio.run(results(stack["bootstrap"], plat.prefix, [outage.event_id], count=2))
    assert len(answers[outage.event_id]) == 2, "the second replay re-published the same result (same id)"


def test_retry_and_retry_all_report_progress_and_a_summary(stack: dict[str, Any]) -> None:
    cli, broken = stack["cli"], stack["broken"]
    single = cli("retry", str(broken.event_id), "--timeout", "60")
    assert single.exit_code == 1, single.output
    assert "still failed" in single.output
    assert "permanent" in single.output

    everything = cli("retry-all", "--org", str(stack["org"]), "--timeout", "60")
    assert re.search(r"\d+/\d+ retried", everything.output), everything.output
    assert "0 succeeded, 1 still failed" in everything.output
    assert everything.exit_code == 1

    nothing = cli("retry", str(stack["outage"].event_id))
    assert nothing.exit_code == 1
    assert "has not failed" in nothing.output
    unknown = cli("retry", str(uuid.uuid4()))
    assert unknown.exit_code == 1
    assert "no sync with id" in unknown.output


def test_manual_sync_is_answered_by_the_owning_service(stack: dict[str, Any]) -> None:
    result = stack["cli"]("sync", "customers", str(stack["other"]), "--timeout", "60")
    assert result.exit_code == 0, result.output
    assert "published SyncAllCustomersRequested" in result.output
    assert "✅ customer-sync: succeeded" in result.output


def test_doctor_passes_a_good_company_and_flags_custom_numbers_off(stack: dict[str, Any]) -> None:
    good = stack["cli"]("doctor", str(stack["org"]))
    assert good.exit_code == 0, good.output
    assert "QuickBooks company: Ops Co" in good.output
    assert "✅ custom transaction numbers: on" in good.output
    bad = stack["cli"]("doctor", str(stack["other"]))
    assert bad.exit_code == 1, bad.output
    assert "❌ custom transaction numbers: off" in bad.output


async def _reset_cursor(bootstrap: str, prefix: str, dead_letters: str) -> None:
    topic = prefix + dead_letters
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=replay_group("customer-sync", prefix))
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            await consumer.topics()
            partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.commit({tp: OffsetAndMetadata(0, "") for tp in partitions})
    finally:
        await consumer.stop()


async def _until(predicate: Any, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.3)
