"""The ledger gauges read what the Sync Dashboard shows: queued and failed counts, failures in 7 days, last sync."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from qbsync.observability.ledger_gauges import LedgerGauges
from qbsync.settings import DatabaseSettings
from tests.ops.support import open_ledger, write_entry


def _sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_gauges_count_queued_and_failed_records_per_entity_type(database_settings: DatabaseSettings) -> None:
    service = "gauge-test-a"
    db = await open_ledger(service, database_settings)
    now = datetime.now(UTC)
    try:
        for _ in range(3):
            await write_entry(db, service, status="retrying", entity_type="invoice")
        await write_entry(db, service, status="parked", entity_type="invoice")
        await write_entry(db, service, status="failed", entity_type="invoice", at=now - timedelta(days=1))
        await write_entry(db, service, status="failed", entity_type="invoice", at=now - timedelta(days=9))
        await write_entry(db, service, status="failed", entity_type="customer", at=now - timedelta(hours=1))
        await write_entry(db, service, status="completed", entity_type="customer", at=now - timedelta(minutes=5))
        newest = await write_entry(
            db, service, status="completed", entity_type="customer", at=now - timedelta(minutes=1)
        )
        await write_entry(db, service, status="ignored", entity_type="sales_order")

        gauges = LedgerGauges(service, db, entity_types=("customer", "invoice", "payment"))
        await gauges.refresh()

        assert _sample("qbsync_ledger_records", service=service, entity_type="payment", status="retrying") == 0, (
            "entity types the service syncs answer 0 queued from the start"
        )
        assert _sample("qbsync_ledger_records", service=service, entity_type="invoice", status="retrying") == 3
        assert _sample("qbsync_ledger_records", service=service, entity_type="invoice", status="parked") == 1
        assert _sample("qbsync_ledger_records", service=service, entity_type="invoice", status="failed") == 2
        assert _sample("qbsync_ledger_records", service=service, entity_type="customer", status="failed") == 1
        assert _sample("qbsync_ledger_records", service=service, entity_type="sales_order", status="failed") is None
        assert _sample("qbsync_ledger_failed_last_7d", service=service, entity_type="invoice") == 1, "9 days is out"
        assert _sample("qbsync_ledger_failed_last_7d", service=service, entity_type="customer") == 1
        last = _sample("qbsync_last_sync_timestamp_seconds", service=service, entity_type="customer")
        assert last is not None
        assert abs(last - newest.now.timestamp()) < 0.01
        assert _sample("qbsync_last_sync_timestamp_seconds", service=service, entity_type="invoice") is None
    finally:
        await db.close()


async def test_a_count_that_drains_drops_to_zero_and_last_sync_only_moves_forward(
    database_settings: DatabaseSettings,
) -> None:
    service = "gauge-test-b"
    db = await open_ledger(service, database_settings)
    now = datetime.now(UTC)
    try:
        retrying = await write_entry(db, service, status="retrying", entity_type="invoice")
        first = await write_entry(db, service, status="completed", entity_type="invoice", at=now - timedelta(minutes=3))
        gauges = LedgerGauges(service, db)
        await gauges.refresh()
        assert _sample("qbsync_ledger_records", service=service, entity_type="invoice", status="retrying") == 1

        # the retried record completes: the same ledger row moves on
        await write_entry(db, service, status="completed", entity_type="invoice", event_id=retrying.event_id, at=now)
        await gauges.refresh()
        assert _sample("qbsync_ledger_records", service=service, entity_type="invoice", status="retrying") == 0
        assert _sample("qbsync_last_sync_timestamp_seconds", service=service, entity_type="invoice") == (
            now.timestamp()
        )
        assert first.now < now
    finally:
        await db.close()
