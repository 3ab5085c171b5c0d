"""Issue 5, end to end: services as separate processes, the embedded broker, the emulator over HTTP.

200 customers for 3 organizations are created, then updated several times; each customer's events are shuffled within
its own history and a share is delivered twice; midway the emulator answers 503 for a while. At the end QuickBooks holds
exactly one customer per valid Batchly customer with the fields of its newest snapshot, and every event has exactly one
terminal outcome.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from qbsync.contracts.batchly import CustomerPayload
from qbsync.domain.customers import validate_customer
from qbsync.runtime.kafka import record_for
from qbsync.simulate import BatchlyWorld, WorldConfig, latest_snapshot, shuffle_within_entity, with_redeliveries
from qbsync.topics import QBSYNC_SYNC_RESULTS
from tests.e2e.platform import platform

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.slow]

CUSTOMERS = 200
ORGS = 3
UPDATE_ROUNDS = 3
TERMINAL = {"SyncCompleted", "SyncFailed"}


def _events(seed: int) -> tuple[list[Any], list[Any]]:
    world = BatchlyWorld(
        seed, start=datetime(2026, 3, 2, 8, 0, tzinfo=UTC), config=WorldConfig(hard_case_share=0.15, invalid_share=0.03)
    )
    orgs = [world.add_organization(customer_update_mode="immediate") for _ in range(ORGS)]
    customers = [world.create_customer(orgs[i % ORGS].entity_id) for i in range(CUSTOMERS)]
    updates = [world.update_customer(c.entity_id) for _ in range(UPDATE_ROUNDS) for c in customers]
    return orgs, [*customers, *updates]


async def _publish(bootstrap: str, prefix: str, events: list[Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=5)
    await producer.start()
    try:
        futures = []
        for event in events:
            record = record_for(event)
            futures.append(
                await producer.send(
                    prefix + record.topic,
                    record.value,
                    key=record.key,
                    headers=[(k, v.encode()) for k, v in record.headers.items()],
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _collect_results(bootstrap: str, prefix: str, wanted: set[str], timeout: float) -> dict[str, dict[str, Any]]:
    """The terminal result of each source event (de-duplicated by result event id), until every wanted one has one."""
    consumer = AIOKafkaConsumer(
        prefix + QBSYNC_SYNC_RESULTS,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    terminal: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    try:
        async with asyncio.timeout(timeout):
            while not wanted <= set(terminal):
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        document = json.loads(record.value or b"")
                        payload = document["payload"]
                        is_terminal = document["event_type"] in TERMINAL or (
                            document["event_type"] == "SyncStatusChanged"
                            and payload["status"] in ("ignored", "pending")
                        )
                        if is_terminal:
                            terminal[payload["source_event_id"]][document["event_id"]] = document
    except TimeoutError:
        missing = wanted - set(terminal)
        raise AssertionError(f"{len(missing)} event(s) have no terminal outcome, e.g. {sorted(missing)[:3]}") from None
    finally:
        await consumer.stop()
    duplicated = {source: docs for source, docs in terminal.items() if len(docs) != 1}
    assert not duplicated, f"events with more than one terminal outcome: {list(duplicated)[:3]}"
    return {source: next(iter(docs.values())) for source, docs in terminal.items()}


def _expected_fields(customer: CustomerPayload) -> dict[str, Any]:
    address = customer.billing_address
    return {
        "DisplayName": customer.display_name.strip(),
        "CompanyName": (customer.company_name or "").strip(),
        "Email": (customer.email or "").strip(),
        "Phone": (customer.phone or "").strip(),
        "Line1": ((address.line1 if address else None) or "").strip(),
        "City": ((address.city if address else None) or "").strip(),
        "PostalCode": ((address.postal_code if address else None) or "").strip(),
        "Active": customer.active,
    }


def _actual_fields(row: dict[str, Any]) -> dict[str, Any]:
    address = row.get("BillAddr") or {}
    return {
        "DisplayName": row["DisplayName"],
        "CompanyName": row.get("CompanyName") or "",
        "Email": (row.get("PrimaryEmailAddr") or {}).get("Address") or "",
        "Phone": (row.get("PrimaryPhone") or {}).get("FreeFormNumber") or "",
        "Line1": address.get("Line1") or "",
        "City": address.get("City") or "",
        "PostalCode": address.get("PostalCode") or "",
        "Active": row.get("Active", True),
    }


def test_customers_converge_exactly_once_through_shuffles_redeliveries_and_an_outage(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    orgs, events = _events(seed=5)
    rng = random.Random(11)
    stream = with_redeliveries(shuffle_within_entity(events, rng), 0.2, rng)
    first_half, second_half = stream[: len(stream) // 2], stream[len(stream) // 2 :]

    with platform(kafka_bootstrap, tmp_path) as plat:
        plat.start_emulator("--no-limits")
        realms = {org.entity_id: plat.create_company(name=org.payload.name) for org in orgs}
        plat.start("token-manager")
        for org in orgs:
            plat.connect(org.entity_id, realms[org.entity_id])
        plat.start("customer-sync", QBSYNC_QBO__REQUESTS_PER_WINDOW="5000")

        asyncio.run(_publish(kafka_bootstrap, plat.prefix, [*orgs, *first_half]))
        # an outage: the next 60 writes to QuickBooks answer 503 (HTML, as Intuit's load balancer does)
        plat.admin("POST", "/faults", json={"kind": "http_error", "status": 503, "operation": "create", "next_n": 30})
        plat.admin("POST", "/faults", json={"kind": "http_error", "status": 503, "operation": "update", "next_n": 30})
        asyncio.run(_publish(kafka_bootstrap, plat.prefix, second_half))

        wanted = {str(e.event_id) for e in events}
        outcomes = asyncio.run(_collect_results(kafka_bootstrap, plat.prefix, wanted, timeout=420))
        fired = sum(rule["fired"] for rule in plat.admin("GET", "/faults"))
        assert fired == 60, "the outage happened"

        newest = latest_snapshot(events)
        by_org: dict[uuid.UUID, list[CustomerPayload]] = defaultdict(list)
        for (_kind, customer_id), event in newest.items():
            by_org[event.organization_id].append(event.payload)
            assert customer_id == event.payload.customer_id
        synced_ids: dict[uuid.UUID, str] = {}
        for event in events:
            result = outcomes[str(event.event_id)]
            if result["event_type"] == "SyncCompleted":
                synced_ids.setdefault(event.entity_id, result["payload"]["qbo_id"])
                assert synced_ids[event.entity_id] == result["payload"]["qbo_id"], "the QBO id never changes"
            elif result["event_type"] == "SyncFailed":
                assert validate_customer(event.payload), f"only invalid customers fail: {result['payload']}"
                assert result["payload"]["error_class"] == "permanent"

        total_valid = 0
        for org in orgs:
            rows = {row["Id"]: row for row in plat.rows(realms[org.entity_id], "Customer")}
            valid = [c for c in by_org[org.entity_id] if not validate_customer(c)]
            invalid = [c for c in by_org[org.entity_id] if validate_customer(c)]
            total_valid += len(valid)
            assert len(rows) == len(valid), "exactly one QuickBooks customer per valid Batchly customer"
            for customer in valid:
                row = rows[synced_ids[customer.customer_id]]
                assert _actual_fields(row) == _expected_fields(customer), customer.customer_id
            assert all(c.customer_id not in synced_ids for c in invalid)
        assert total_valid >= CUSTOMERS * 0.9
        hard = sum(1 for e in events if "'" in e.payload.display_name or not e.payload.display_name.isascii())
        assert hard > 0, "the run included apostrophes and unicode"

        kinds = defaultdict(int)
        for result in outcomes.values():
            kinds[result["payload"].get("action") or result["payload"].get("status") or result["event_type"]] += 1
        print(  # the figures behind the assertions, for the record (pytest -s shows them)
            f"\ncustomer-sync e2e: {len(events)} events ({len(stream)} records incl. redeliveries) for {CUSTOMERS} "
            f"customers in {ORGS} organizations; {fired} injected 503s; {total_valid} valid customers in QuickBooks; "
            f"outcomes {dict(sorted(kinds.items()))}"
        )
        health = plat.processes["customer-sync"]
        assert health.popen.poll() is None, health.tail()
        assert plat.stop("customer-sync") == 0, "graceful shutdown"
