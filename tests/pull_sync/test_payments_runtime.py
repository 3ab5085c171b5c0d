"""Payment status end to end: the emulator as the accountant, pull-sync's runtime on a real broker and database.

Payments, partial payments, refunds (a voided, reduced or deleted payment) and voids reach Batchly as
``InvoicePaymentChanged`` within seconds through webhooks (legacy and CloudEvents), and again — with webhooks switched
off — through the scheduled change-feed run.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from qbsync.contracts.batchly import FlushCustomerUpdatesRequested, SyncPaymentsRequested
from qbsync.persistence.tables import sync_attempts
from qbsync.qbo.webhooks import sign_webhook
from qbsync.settings import DatabaseSettings, KafkaSettings, PullSyncSettings, TopicSettings
from qbsync.topics import BATCHLY_COMMANDS, QBSYNC_WEBHOOKS
from tests.fixtures.emulator import ServerHandle
from tests.integration.harness import Kafka
from tests.pull_sync.harness import (
    Books,
    FakeClock,
    PullSyncUnderTest,
    changes,
    command,
    create_topics,
    in_days,
    invoice_synced,
    money,
    pull_sync_running,
)

pytestmark = [pytest.mark.kafka]


@dataclass
class Invoice:
    batchly_id: uuid.UUID
    qbo_id: str
    number: str
    customer_id: str


async def _invoices(books: Books, kafka: Kafka, specs: list[tuple[str, str, int]]) -> dict[str, Invoice]:
    """Invoices invoice-sync would have put into QuickBooks: (number, amount, due in days); announced to pull-sync."""
    customer = await books.customer(f"Customer {uuid.uuid4().hex[:6]}")
    made: dict[str, Invoice] = {}
    for number, amount, due in specs:
        row = await books.invoice(customer, number, amount, due=in_days(due))
        made[number] = Invoice(uuid.uuid4(), str(row["Id"]), number, customer)
    await kafka.publish(*(invoice_synced(books.org, i.batchly_id, i.qbo_id, i.number) for i in made.values()))
    return made


async def _linked(rt: PullSyncUnderTest, books: Books, count: int) -> None:
    from pull_sync import store
    from tests.integration.harness import wait_for

    async def all_linked() -> bool:
        async with rt.db.connect() as conn:
            return len(await store.invoice_links_of(conn, books.org)) >= count

    await wait_for(all_linked, timeout=30)


async def _expect(
    kafka: Kafka, books: Books, invoice: Invoice, seen: int, **fields: Any
) -> tuple[list[dict[str, Any]], int]:
    """Wait for the next InvoicePaymentChanged of ``books``; it must be about ``invoice`` and say ``fields``."""
    found = await changes(kafka, "InvoicePaymentChanged", at_least=seen + 1, org=books.org)
    assert len(found) == seen + 1, [d["payload"] for d in found[seen:]]
    newest = found[-1]
    assert newest["payload"]["qbo_invoice_id"] == invoice.qbo_id, newest["payload"]
    assert newest["payload"]["invoice_id"] == str(invoice.batchly_id)
    assert newest["payload"]["invoice_number"] == invoice.number
    assert newest["entity_id"] == str(invoice.batchly_id)
    for name, value in fields.items():
        assert newest["payload"][name] == value, (name, newest["payload"])
    return found, seen + 1


@pytest.mark.parametrize("fmt", ["legacy", "cloudevents"])
async def test_accountant_payments_refunds_and_voids_reach_batchly_within_seconds_via_webhooks(
    fmt: str,
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    books = Books(emulator_server)
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with pull_sync_running(
            emulator_server, [books], kafka_settings, topic_settings, sqlite_database_settings
        ) as rt:
            inv = await _invoices(
                books, kafka, [("W-1", "100.00", 20), ("W-2", "60.00", 20), ("W-3", "40.00", 20), ("W-4", "25.00", 5)]
            )
            await _linked(rt, books, 4)
            await books.subscribe(rt.webhook_url, fmt)
            today = datetime.now(UTC).date()
            seen = 0

            paid = await books.pay(inv["W-1"].customer_id, inv["W-1"].qbo_id, "100.00", method="Visa", on=today)
            _, seen = await _expect(
                kafka, books, inv["W-1"], seen, status="paid", amount_paid="100.00", amount_due="0.00",
                last_payment_date=today.isoformat(), payment_method="Visa", total="100.00",
            )  # fmt: skip
            partial = await books.pay(inv["W-2"].customer_id, inv["W-2"].qbo_id, "20.00", method="Check")
            _, seen = await _expect(
                kafka, books, inv["W-2"], seen, status="partial", amount_paid="20.00", amount_due="40.00",
                payment_method="Check",
            )  # fmt: skip
            await books.write("Invoice", {"Id": inv["W-3"].qbo_id}, operation="void")
            _, seen = await _expect(kafka, books, inv["W-3"], seen, status="cancelled", amount_due="0.00")

            # refunds in QuickBooks: the payment is voided, reduced, or deleted
            await books.write("Payment", {"Id": paid["Id"]}, operation="void")
            _, seen = await _expect(
                kafka, books, inv["W-1"], seen, status="sent", amount_paid="0.00", amount_due="100.00",
                last_payment_date=None, payment_method=None,
            )  # fmt: skip
            reduced = {
                "Id": partial["Id"],
                "sparse": True,
                "TotalAmt": 5,
                "Line": [{"Amount": 5, "LinkedTxn": [{"TxnId": inv["W-2"].qbo_id, "TxnType": "Invoice"}]}],
            }
            await books.write("Payment", reduced, operation="update")
            _, seen = await _expect(
                kafka, books, inv["W-2"], seen, status="partial", amount_paid="5.00", amount_due="55.00"
            )
            full = await books.pay(inv["W-4"].customer_id, inv["W-4"].qbo_id, "25.00", method="Cash")
            _, seen = await _expect(kafka, books, inv["W-4"], seen, status="paid", payment_method="Cash")
            await books.write("Payment", {"Id": full["Id"]}, operation="delete")
            found, seen = await _expect(kafka, books, inv["W-4"], seen, status="sent", amount_paid="0.00")

            assert len({d["event_id"] for d in found}) == len(found), "every change published once"
            versions = [d["entity_version"] for d in found if d["payload"]["qbo_invoice_id"] == inv["W-1"].qbo_id]
            assert versions == sorted(versions), "an invoice's versions only move forward"

            # an item the accountant re-prices arrives the same way
            hours = await books.id_of("Item", "Hours")
            await books.http.post(f"/companies/{books.realm}/accountant/items/{hours}", json={"unit_price": 85})
            (item,) = await changes(kafka, "ItemChanged", at_least=1, org=books.org)
            assert (item["payload"]["qbo_item_id"], item["payload"]["unit_price"]) == (hours, "85.00000")


async def test_with_webhooks_off_the_scheduled_change_feed_runs_publish_the_same_outcomes(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    database_settings: DatabaseSettings,
) -> None:
    zone = ZoneInfo("America/New_York")
    books = Books(emulator_server, timezone="America/New_York")
    day = datetime.now(zone).date() + timedelta(days=1)
    clock = FakeClock(datetime.combine(day, time(0, 30), tzinfo=zone).astimezone(UTC))
    pull = PullSyncSettings(webhooks_enabled=False, scheduler_interval_seconds=0.2, reconcile_at="off")
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with pull_sync_running(
            emulator_server, [books], kafka_settings, topic_settings, database_settings, pull=pull, clock=clock
        ) as rt:
            assert rt.parts.routes == [], "no webhook route when webhooks are off"
            inv = await _invoices(
                books,
                kafka,
                [("S-1", "100.00", 20), ("S-2", "60.00", 20), ("S-3", "40.00", 20), ("S-4", "30.00", 20),
                 ("S-5", "75.00", -10), ("S-6", "50.00", 3)],
            )  # fmt: skip
            await _linked(rt, books, 6)
            # S-7: synced and paid long before pull-sync hears of it (invoice-sync's result comes late)
            late_customer = await books.customer("Late News Ltd")
            late_row = await books.invoice(late_customer, "S-7", "45.00", due=in_days(30))
            late = Invoice(uuid.uuid4(), str(late_row["Id"]), "S-7", late_customer)
            await books.pay(late_customer, late.qbo_id, "45.00", method="Check")
            async with httpx.AsyncClient(timeout=10) as admin:  # ten minutes pass in QuickBooks
                await admin.post(f"{emulator_server.base_url}/_admin/clock", json={"advance_s": 600})
            paid = await books.pay(inv["S-1"].customer_id, inv["S-1"].qbo_id, "100.00", method="Visa")
            partial = await books.pay(inv["S-2"].customer_id, inv["S-2"].qbo_id, "20.00", method="Check")
            await books.write("Invoice", {"Id": inv["S-3"].qbo_id}, operation="void")

            # 02:01 in New York: the payments slot is due (the first run reloads everything)
            clock.set(datetime.combine(day, time(2, 1), tzinfo=zone).astimezone(UTC))
            found = await changes(kafka, "InvoicePaymentChanged", at_least=4, org=books.org)
            by_number = {d["payload"]["invoice_number"]: d["payload"] for d in found}
            assert set(by_number) == {"S-1", "S-2", "S-3", "S-5"}, "S-4 and S-6 are unpaid and not due: no news"
            assert by_number["S-1"]["status"] == "paid"
            assert (by_number["S-2"]["status"], by_number["S-2"]["amount_paid"]) == ("partial", money("20"))
            assert by_number["S-3"]["status"] == "cancelled"
            assert (by_number["S-5"]["status"], by_number["S-5"]["amount_due"]) == ("overdue", money("75"))
            assert "full: first run" in await _slot_completed(rt, books, f"payments@{day.isoformat()}")

            # the next day: refunds and a new payment from the change feed; S-7 from its late link
            await kafka.publish(invoice_synced(books.org, late.batchly_id, late.qbo_id, late.number))
            await _linked(rt, books, 7)
            await books.write("Payment", {"Id": paid["Id"]}, operation="void")
            reduced = {
                "Id": partial["Id"],
                "sparse": True,
                "TotalAmt": 5,
                "Line": [{"Amount": 5, "LinkedTxn": [{"TxnId": inv["S-2"].qbo_id, "TxnType": "Invoice"}]}],
            }
            await books.write("Payment", reduced, operation="update")
            await books.pay(inv["S-4"].customer_id, inv["S-4"].qbo_id, "30.00", method="Cash")
            clock.set(datetime.combine(day + timedelta(days=1), time(3, 5), tzinfo=zone).astimezone(UTC))
            found = await changes(kafka, "InvoicePaymentChanged", at_least=8, org=books.org)
            later = {d["payload"]["invoice_number"]: d["payload"] for d in found[4:]}
            assert set(later) == {"S-1", "S-2", "S-4", "S-7"}, later
            assert (later["S-1"]["status"], later["S-1"]["amount_paid"]) == ("sent", money("0"))
            assert (later["S-2"]["status"], later["S-2"]["amount_paid"]) == ("partial", money("5"))
            assert (later["S-4"]["status"], later["S-4"]["payment_method"]) == ("paid", "Cash")
            assert (later["S-7"]["status"], later["S-7"]["invoice_id"]) == ("paid", str(late.batchly_id))
            second = await _slot_completed(rt, books, f"payments@{(day + timedelta(days=1)).isoformat()}")
            assert "(incremental)" in second, "the second run read the change feed"

            # days later S-6 is past due: nothing changed in QuickBooks, the stored facts say it is overdue now
            clock.set(datetime.combine(day + timedelta(days=5), time(2, 1), tzinfo=zone).astimezone(UTC))
            found = await changes(kafka, "InvoicePaymentChanged", at_least=9, org=books.org)
            assert len(found) == 9
            overdue = found[8]["payload"]
            assert (overdue["invoice_number"], overdue["status"], overdue["amount_due"]) == ("S-6", "overdue", "50.00")
            await _slot_completed(rt, books, f"payments@{(day + timedelta(days=5)).isoformat()}")
            assert len(await changes(kafka, "InvoicePaymentChanged", at_least=9, org=books.org)) == 9

            # the 3 AM slot handed the customer-update flush to customer-sync, once
            flushes = [
                r
                for r in await kafka.read(BATCHLY_COMMANDS, expect=1)
                if r.headers.get("event-type") == FlushCustomerUpdatesRequested.EVENT_TYPE
            ]
            assert len(flushes) == 1
            assert flushes[0].key == str(books.org).encode()


async def test_a_repeated_webhook_is_processed_once_and_a_forged_one_never_reaches_kafka(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    books = Books(emulator_server)
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with pull_sync_running(
            emulator_server, [books], kafka_settings, topic_settings, sqlite_database_settings
        ) as rt:
            inv = await _invoices(books, kafka, [("D-1", "80.00", 10)])
            await _linked(rt, books, 1)
            await books.pay(inv["D-1"].customer_id, inv["D-1"].qbo_id, "80.00")
            change = {"name": "Invoice", "id": inv["D-1"].qbo_id, "operation": "Update", "lastUpdated": "x"}
            body = json.dumps(
                {"eventNotifications": [{"realmId": books.realm, "dataChangeEvent": {"entities": [change]}}]}
            ).encode()
            async with httpx.AsyncClient(timeout=10) as http:
                forged = await http.post(
                    rt.webhook_url, content=body, headers={"intuit-signature": sign_webhook(body, "x")}
                )
                assert forged.status_code == 401
                assert sum((await kafka.end_offsets(QBSYNC_WEBHOOKS)).values()) == 0, "nothing was queued"
                signature = sign_webhook(body, PullSyncSettings().webhook_verifier_token.get_secret_value())
                for _ in range(2):  # Intuit delivers the same notification again
                    response = await http.post(rt.webhook_url, content=body, headers={"intuit-signature": signature})
                    assert response.status_code == 200
            queued = await kafka.read(QBSYNC_WEBHOOKS, expect=2)
            event_ids = {json.loads(r.value or b"")["event_id"] for r in queued}
            assert len(queued) == 2
            assert len(event_ids) == 1, "the repeat carries the same event id"
            row = await rt.finished(uuid.UUID(event_ids.pop()))
            assert row.status == "completed"
            found = await changes(kafka, "InvoicePaymentChanged", at_least=1, org=books.org)
            assert [d["payload"]["status"] for d in found] == ["paid"]
            async with rt.db.connect() as conn:
                attempts = (
                    await conn.execute(
                        select(func.count()).select_from(sync_attempts).where(sync_attempts.c.ledger_id == row.id)
                    )
                ).scalar_one()
            assert attempts == 1, "the repeat was recognised, not processed again"


async def _slot_completed(rt: PullSyncUnderTest, books: Books, slot: str) -> str:
    """The ledger summary of the PullRequested a schedule slot published (waits for it to complete)."""
    from pull_sync import events

    row = await rt.finished(events.slot_event_id(books.org, slot))
    assert row.status == "completed", row
    return " | ".join(w["message"] for w in row.warnings or [])


async def test_an_invoice_linked_after_a_payment_run_passed_it_by_is_read_at_once(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    """invoice-sync's result and "Sync Payments Now" travel on different topics: the run can read the links before the
    result is consumed. Found by the demo (a payment never reported): the late link now brings a read of its own."""
    books = Books(emulator_server)
    pull = PullSyncSettings(webhooks_enabled=False, reconcile_at="off")
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with pull_sync_running(
            emulator_server, [books], kafka_settings, topic_settings, sqlite_database_settings, pull=pull
        ) as rt:
            customer = await books.customer("Quick Payers")
            row = await books.invoice(customer, "L-1", "80.00", due=in_days(30))
            synced_at = datetime.now(UTC)  # invoice-sync's result, not yet consumed by pull-sync
            await books.pay(customer, str(row["Id"]), "80.00", method="Visa")
            run = command(SyncPaymentsRequested, books.org)
            await kafka.publish(run)
            await rt.finished(run.event_id)  # the run passed the invoice by: pull-sync did not know it yet
            assert await changes(kafka, "InvoicePaymentChanged", at_least=0, org=books.org) == []
            late = invoice_synced(books.org, uuid.uuid4(), str(row["Id"]), "L-1").model_copy(
                update={"occurred_at": synced_at}
            )
            await kafka.publish(late)
            found = await changes(kafka, "InvoicePaymentChanged", at_least=1, org=books.org)
            assert [(d["payload"]["invoice_number"], d["payload"]["status"]) for d in found] == [("L-1", "paid")]
