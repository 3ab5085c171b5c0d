"""invoice-sync through the real runtime, a real broker and the QBO emulator over HTTP.

Each test runs the service as it runs in production (handlers registered by ``invoice_sync.handlers``, the consumer
runtime, the QBO client) against one or more emulator companies; Batchly's events are published to the broker and
the outcome is read back from ``qbsync.sync-results``, the service's ledger and the emulator's rows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from prometheus_client import REGISTRY

from qbsync.contracts.batchly import InvoiceUpdated, SalesOrderCreated, SalesOrderPayload, SyncInvoiceRequested
from qbsync.contracts.envelope import AnyEnvelope
from qbsync.qbo import QboClientSettings
from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync.simulate import DEFAULT_CATALOG, per_line_tax, tax_on
from qbsync.topics import QBSYNC_SYNC_RESULTS, dead_letter_topic
from tests.fixtures.emulator import ServerHandle
from tests.integration.harness import Kafka
from tests.invoice_sync.support import (
    BATCHING,
    LADDER,
    SERVICE,
    SINGLE,
    Company,
    Results,
    create_topics,
    credit_memo_created,
    document,
    invoice_created,
    invoice_payload,
    invoice_sync_running,
    invoice_voided,
    item_lines,
    lines_of,
    link_customer,
    outcomes,
    payment_recorded,
    refund_issued,
    set_gap_policy,
    wait_item_linked,
)

pytestmark = [pytest.mark.kafka]

CATALOG = DEFAULT_CATALOG[:12]
FOUNTAIN, BAGELS, MUFFIN, LABELS = DEFAULT_CATALOG[0], DEFAULT_CATALOG[1], DEFAULT_CATALOG[5], DEFAULT_CATALOG[23]


def _mismatches(kind: str) -> float:
    return REGISTRY.get_sample_value("qbsync_invoice_mismatches_total", {"kind": kind}) or 0.0


def _totals_match(row: dict[str, Any], payload: Any) -> None:
    assert Decimal(str(row["TotalAmt"])) == payload.total
    assert Decimal(str(row["TxnTaxDetail"]["TotalTax"])) == payload.tax_total


async def test_missing_item_fails_with_the_seeds_resolution_and_syncs_once_the_item_exists(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    co = Company(emulator_server)
    co.create_items([FOUNTAIN, BAGELS])
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with invoice_sync_running(
            emulator_server, [co], kafka_settings, topic_settings, sqlite_database_settings
        ) as rt:
            await kafka.publish(co.item_changed(FOUNTAIN))  # pull-sync matched it: linked by Batchly item id
            customer, qbo_customer = await link_customer(kafka, rt, co)
            # FOUNTAIN by its link (no SKU on the line), BAGELS by its SKU (QuickBooks looked up)
            known = invoice_payload(co, customer, "INV-000001", lines_of(co, [(FOUNTAIN, "2")], sku=False))
            by_sku = invoice_payload(co, customer, "INV-000002", lines_of(co, [(BAGELS, "3")]))
            missing = invoice_payload(co, customer, "INV-000003", lines_of(co, [(BAGELS, "1"), (LABELS, "500")]))
            events = [invoice_created(co, p) for p in (known, by_sku, missing)]
            await kafka.publish(*events)
            found = await outcomes(kafka, events)
            assert [found[e.event_id]["event_type"] for e in events] == ["SyncCompleted", "SyncCompleted", "SyncFailed"]
            failure = found[events[2].event_id]["payload"]
            assert failure["error_class"] == "permanent"
            assert failure["message"] == f'Item "{LABELS.sku}" not found in QuickBooks'
            assert "Create the item in QuickBooks, run item sync (Sync Items Now), then retry" in failure["hint"]
            dead = await kafka.read(dead_letter_topic(SERVICE), expect=1)
            assert dead[0].headers["qbsync-attempt"] == "1", "a missing item is permanent: no retries"
            assert sorted(r["DocNumber"] for r in co.invoices()) == ["INV-000001", "INV-000002"]
            rows = {r["DocNumber"]: r for r in co.invoices()}
            assert (
                item_lines(rows["INV-000001"])[0]["SalesItemLineDetail"]["ItemRef"]["value"] == co.items[FOUNTAIN.sku]
            )
            assert item_lines(rows["INV-000002"])[0]["SalesItemLineDetail"]["ItemRef"]["value"] == co.items[BAGELS.sku]
            assert all(r["CustomerRef"]["value"] == qbo_customer for r in rows.values())

            # the seed's resolution: the accountant creates the item, item sync runs, "Retry Sync"
            co.create_items([LABELS])
            await kafka.publish(co.item_changed(LABELS))
            await wait_item_linked(rt, co, LABELS)  # item sync ran: then the user presses "Retry Sync"
            retry = co.envelope(SyncInvoiceRequested, missing.invoice_id, missing)
            await kafka.publish(retry)
            done = (await outcomes(kafka, [retry]))[retry.event_id]
            assert done["event_type"] == "SyncCompleted"
            assert done["payload"]["action"] == "created"
            assert sorted(r["DocNumber"] for r in co.invoices()) == ["INV-000001", "INV-000002", "INV-000003"]


@pytest.mark.parametrize("settings", [BATCHING, SINGLE], ids=["batched", "single"])
async def test_number_conflict_links_our_own_invoice_and_reports_a_foreign_one_with_the_counter_reset(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
    settings: Any,
) -> None:
    co = Company(emulator_server)
    co.create_items([FOUNTAIN, BAGELS])
    services = co.items[FOUNTAIN.sku]
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with invoice_sync_running(
            emulator_server, [co], kafka_settings, topic_settings, sqlite_database_settings, settings=settings
        ) as rt:
            customer, qbo_customer = await link_customer(kafka, rt, co)
            other = co.create_customer("Someone Else")
            ours = invoice_payload(co, customer, "INV-000101", lines_of(co, [(FOUNTAIN, "2"), (BAGELS, "1")]))
            foreign = invoice_payload(co, customer, "INV-000102", lines_of(co, [(BAGELS, "4")]))
            # already in QuickBooks: ours with the same customer and total (one line, so the lines differ) ...
            co.write("Invoice", _one_line_invoice("INV-000101", qbo_customer, services, ours.total))
            # ... and another customer's invoice holding the next number, plus a higher number of the same prefix
            co.write("Invoice", _one_line_invoice("INV-000102", other, services, Decimal("5.00")))
            co.write("Invoice", _one_line_invoice("INV-000150", other, services, Decimal("6.00")))
            before = _mismatches("line_count")
            events = [invoice_created(co, ours), invoice_created(co, foreign)]
            await kafka.publish(*events)
            found = await outcomes(kafka, events)

            linked = found[events[0].event_id]
            assert linked["event_type"] == "SyncCompleted"
            assert linked["payload"]["action"] == "linked"
            assert linked["payload"]["needs_review"] is True, "the lines differ: flagged for review"
            # same total, but one untaxed line where Batchly has two lines and tax
            assert {w["code"] for w in linked["payload"]["warnings"]} == {"mismatch_line_count", "mismatch_tax"}
            assert _mismatches("line_count") == before + 1

            failed = found[events[1].event_id]
            assert failed["event_type"] == "SyncFailed"
            assert failed["payload"]["error_code"] == "6140"
            assert "INV-000151" in failed["payload"]["hint"]
            notices = [
                json.loads(r.value or b"")
                for r in await kafka.read(QBSYNC_SYNC_RESULTS, expect=4)
                if r.headers.get("event-type") == "InvoiceNumberConflictDetected"
            ]
            assert len(notices) == 1
            assert notices[0]["payload"]["suggested_next_number"] == "INV-000151"
            assert notices[0]["payload"]["invoice_id"] == str(foreign.invoice_id)
            numbers = sorted(r["DocNumber"] for r in co.invoices())
            assert numbers == ["INV-000101", "INV-000102", "INV-000150"], "nothing duplicated, nothing created"
            ledger = {r.event_id: r for r in await rt.ledger_rows()}
            assert ledger[events[0].event_id].needs_review is True
            assert "mismatch_line_count" in {w["code"] for w in ledger[events[0].event_id].warnings}


def _one_line_invoice(number: str, customer: str, item: str, total: Decimal) -> dict[str, Any]:
    return {
        "DocNumber": number,
        "CustomerRef": {"value": customer},
        "Line": [
            {
                "Amount": float(total),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": item}, "TaxCodeRef": {"value": "NON"}},
            }
        ],
        "TxnTaxDetail": {"TotalTax": 0},
    }


async def test_void_after_sync_void_before_sync_and_void_of_an_unknown_invoice(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    database_settings: DatabaseSettings,
) -> None:
    co = Company(emulator_server)
    co.create_items([FOUNTAIN])
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with invoice_sync_running(
            emulator_server, [co], kafka_settings, topic_settings, database_settings, runtime=LADDER
        ) as rt:
            customer, _ = await link_customer(kafka, rt, co)
            synced = invoice_payload(co, customer, "INV-000001", lines_of(co, [(FOUNTAIN, "2")]))
            created = invoice_created(co, synced)
            await kafka.publish(created)
            await outcomes(kafka, [created])
            after = invoice_voided(co, synced)
            await kafka.publish(after)
            voided = (await outcomes(kafka, [after]))[after.event_id]
            assert voided["payload"]["action"] == "voided"
            row = next(r for r in co.invoices() if r["DocNumber"] == "INV-000001")
            assert (row["TotalAmt"], row["PrivateNote"]) == (0, "Voided")
            assert row["Id"] == voided["payload"]["qbo_id"]

            # an invoice whose customer is not linked yet: it waits in the ladder, the void arrives meanwhile
            late_customer = uuid.uuid4()
            waiting = invoice_payload(co, late_customer, "INV-000002", lines_of(co, [(FOUNTAIN, "1")]))
            pending_invoice = invoice_created(co, waiting)
            await kafka.publish(pending_invoice)
            results = Results(kafka)
            await _until(lambda: _status(results, pending_invoice) == "retrying", results)
            before = invoice_voided(co, waiting)
            await kafka.publish(before)
            deferred = (await outcomes(kafka, [before]))[before.event_id]
            assert deferred["payload"]["status"] == "pending"
            assert "voided right after it is created" in deferred["payload"]["message"]
            await kafka.publish(co.customer_linked(late_customer, co.create_customer("Late Customer")))
            # the held void may publish its result a moment before the invoice's own: wait for both
            await _until(lambda: _completed(results, before) and _completed(results, pending_invoice), results)
            assert _completed(results, before)["payload"]["action"] == "voided"
            assert _completed(results, pending_invoice)["payload"]["action"] == "created"
            rows = {r["DocNumber"]: r for r in co.invoices()}
            assert (rows["INV-000002"]["TotalAmt"], rows["INV-000002"]["PrivateNote"]) == (0, "Voided")
            ledger = {r.event_id: r for r in await rt.ledger_rows()}
            assert ledger[before.event_id].status == "completed", "the deferred void's own row is completed"

            # a void for an invoice invoice-sync never saw waits through the ladder, then fails clearly
            unknown = invoice_payload(co, customer, "INV-000099", lines_of(co, [(FOUNTAIN, "1")]))
            orphan = invoice_voided(co, unknown)
            await kafka.publish(orphan)
            gave_up = (await outcomes(kafka, [orphan]))[orphan.event_id]
            assert gave_up["event_type"] == "SyncFailed"
            assert gave_up["payload"]["error_class"] == "dependency"
            assert gave_up["payload"]["attempt"] == LADDER.max_attempts
            assert len(co.invoices()) == 2


async def _until(check: Any, results: Results, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while True:
            await results.read(1, timeout=timeout)
            if check():
                return
            await asyncio.sleep(0.1)


def _status(results: Results, event: AnyEnvelope) -> str | None:
    statuses = [d["payload"].get("status") for d in results.of(event) if d["event_type"] == "SyncStatusChanged"]
    return statuses[-1] if statuses else None


def _completed(results: Results, event: AnyEnvelope) -> Any:
    return next((d for d in results.of(event) if d["event_type"] == "SyncCompleted"), None)


async def test_payment_credit_memo_and_refunds_reach_quickbooks_once_and_move_the_customer_balance(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    database_settings: DatabaseSettings,
) -> None:
    co = Company(emulator_server)
    co.create_items(CATALOG)
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with invoice_sync_running(
            emulator_server, [co], kafka_settings, topic_settings, database_settings, runtime=LADDER
        ) as rt:
            customer, qbo_customer = await link_customer(kafka, rt, co)
            first = invoice_payload(co, customer, "INV-000001", lines_of(co, [(FOUNTAIN, "10"), (MUFFIN, "12")]))
            second = invoice_payload(co, customer, "INV-000002", lines_of(co, [(BAGELS, "5")]))
            invoices = [invoice_created(co, first), invoice_created(co, second)]
            await kafka.publish(*invoices)
            await outcomes(kafka, invoices)

            paid_part = (first.total * Decimal("0.4")).quantize(Decimal("0.01"))
            credit = credit_memo_created(co, first, lines_of(co, [(MUFFIN, "2")]), "CM-000001")
            pay_first = payment_recorded(co, first, paid_part)
            pay_second = payment_recorded(co, second, second.total)
            steps: list[AnyEnvelope] = [pay_first, pay_second]
            await kafka.publish(*steps, *steps)  # every event delivered twice
            await outcomes(kafka, steps)
            await kafka.publish(credit, credit)
            await outcomes(kafka, [credit])
            credit_on_paid = credit_memo_created(co, second, lines_of(co, [(BAGELS, "1")]), "CM-000002")
            await kafka.publish(credit_on_paid)
            await outcomes(kafka, [credit_on_paid])
            refund_paid = refund_issued(co, customer, Decimal("10.00"), invoice_id=second.invoice_id)
            refund_credit = refund_issued(
                co, customer, credit_on_paid.payload.total, credit_memo_id=credit_on_paid.payload.credit_memo_id
            )
            refunds = [refund_paid, refund_credit]
            await kafka.publish(*refunds, *refunds)
            found = await outcomes(kafka, [*steps, credit, credit_on_paid, *refunds])

            payments = co.rows("Payment")
            portal = [p for p in payments if Decimal(str(p["TotalAmt"])) > 0]
            assert sorted(Decimal(str(p["TotalAmt"])) for p in portal) == sorted([paid_part, second.total])
            assert {p["Id"] for p in portal} == {found[e.event_id]["payload"]["qbo_id"] for e in steps}
            memos = {m["DocNumber"]: m for m in co.rows("CreditMemo")}
            assert set(memos) == {"CM-000001", "CM-000002"}
            assert found[credit.event_id]["payload"]["qbo_id"] == memos["CM-000001"]["Id"]
            assert Decimal(str(memos["CM-000001"]["RemainingCredit"])) == 0, "applied to the invoice"
            assert Decimal(str(memos["CM-000002"]["RemainingCredit"])) == credit_on_paid.payload.total
            rows = {r["DocNumber"]: r for r in co.invoices()}
            open_first = first.total - paid_part - credit.payload.total
            assert Decimal(str(rows["INV-000001"]["Balance"])) == open_first
            assert Decimal(str(rows["INV-000002"]["Balance"])) == 0
            receipts = co.rows("RefundReceipt")
            assert sorted(Decimal(str(r["TotalAmt"])) for r in receipts) == sorted(
                [Decimal("10.00"), credit_on_paid.payload.total]
            )
            assert all(r["CustomerRef"]["value"] == qbo_customer for r in receipts)
            assert found[refund_credit.event_id]["payload"]["needs_review"] is True
            assert found[refund_paid.event_id]["payload"]["needs_review"] is False
            balance = Decimal(str(co.row("Customer", qbo_customer)["Balance"]))
            assert balance == open_first - credit_on_paid.payload.total
            zero_payments = [p for p in payments if Decimal(str(p["TotalAmt"])) == 0]
            assert len(zero_payments) == 1, "one credit application, one zero-amount payment"
            assert await document(rt, co, "credit_memo", credit.payload.credit_memo_id) is not None


async def test_a_250_line_invoice_with_rounding_sensitive_tax_keeps_every_line_and_cent(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    co = Company(emulator_server)  # automated sales tax on (the emulator's default): it rounds tax per line
    taxable = [item for item in DEFAULT_CATALOG if item.taxable][:10]
    co.create_items(taxable)
    picks = [(taxable[n % len(taxable)], str(1 + n % 7)) for n in range(250)]
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with invoice_sync_running(
            emulator_server, [co], kafka_settings, topic_settings, sqlite_database_settings
        ) as rt:
            customer, _ = await link_customer(kafka, rt, co)
            lines = lines_of(co, picks)
            payload = invoice_payload(co, customer, "INV-000250", lines, tax_percent=Decimal("9.975"))
            amounts = [line.amount for line in lines]
            assert per_line_tax(amounts, Decimal("9.975")) != tax_on(sum(amounts), Decimal("9.975")), "sensitive"
            event = invoice_created(co, payload)
            await kafka.publish(event)
            assert (await outcomes(kafka, [event]))[event.event_id]["event_type"] == "SyncCompleted"
            (row,) = co.invoices()
            qbo_lines = item_lines(row)
            assert len(qbo_lines) == 250
            assert [
                (ln["SalesItemLineDetail"]["ItemRef"]["value"], Decimal(str(ln["Amount"])), ln["Description"])
                for ln in qbo_lines
            ] == [(co.items[ln.sku or ""], ln.amount, ln.description) for ln in lines]
            _totals_match(row, payload)


@pytest.mark.parametrize(
    ("settings", "qbo_retries", "operation"),
    [(BATCHING, 3, "batch"), (SINGLE, 3, "create"), (SINGLE, 1, "create")],
    ids=["batched-replayed", "single-replayed", "single-found-by-number"],
)
async def test_a_connection_dropped_after_the_write_still_gives_exactly_one_invoice(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
    settings: Any,
    qbo_retries: int,
    operation: str,
) -> None:
    """QuickBooks applied the write but the answer never came. With in-place retries the client repeats it with the
    same requestid (QuickBooks replays); without, the record goes through the ladder and its next attempt finds the
    invoice by its number before writing (the write-ahead intent says the outcome is unknown)."""
    co = Company(emulator_server, duplicate_docnum_check=False)  # only our own care can prevent a duplicate
    co.create_items([FOUNTAIN])
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with invoice_sync_running(
            emulator_server,
            [co],
            kafka_settings,
            topic_settings,
            sqlite_database_settings,
            settings=settings,
            qbo_settings=QboClientSettings(base_url=emulator_server.base_url, write_max_attempts=qbo_retries),
        ) as rt:
            customer, _ = await link_customer(kafka, rt, co)
            co.fault(kind="drop", operation=operation, after_write=True, next_n=1)
            payload = invoice_payload(co, customer, "INV-000777", lines_of(co, [(FOUNTAIN, "3")]))
            event = invoice_created(co, payload)
            await kafka.publish(event, event)
            done = (await outcomes(kafka, [event]))[event.event_id]
            assert done["event_type"] == "SyncCompleted"
            assert [r["DocNumber"] for r in co.invoices()] == ["INV-000777"]
            stats = co.stats()
            assert stats["faults_injected"] == 1
            if qbo_retries > 1:
                assert done["payload"]["action"] == "created"
                assert stats["replays"] >= 1, "the repeated request was answered from QuickBooks' replay"
            else:
                # the failed attempt left its intent: the next one (the redelivered copy or the retry, whichever
                # comes first) looked the invoice up by its number and linked it instead of writing again
                assert done["payload"]["action"] == "linked"


async def test_updates_are_ignored_as_immutable_and_sales_orders_never_sync(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    co = Company(emulator_server)
    customer = uuid.uuid4()
    payload = invoice_payload(co, customer, "INV-000001", lines_of(co, [(FOUNTAIN, "1")]))
    order = SalesOrderPayload(
        order_id=uuid.uuid4(),
        order_number="SO-000001",
        customer_id=customer,
        order_date=payload.invoice_date,
        status="approved",
        lines=[],
        total=Decimal("0.00"),
    )
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with invoice_sync_running(
            emulator_server, [co], kafka_settings, topic_settings, sqlite_database_settings
        ):
            events = [
                co.envelope(InvoiceUpdated, payload.invoice_id, payload),
                co.envelope(SalesOrderCreated, order.order_id, order),
            ]
            await kafka.publish(*events)
            found = await outcomes(kafka, events)
            update, sale = (found[e.event_id]["payload"] for e in events)
            assert update["status"] == "ignored"
            assert "cancel it in Batchly and create a credit memo" in update["message"]
            assert sale["status"] == "ignored"
            assert co.invoices() == []


async def test_number_gaps_warn_or_block_by_the_organizations_policy(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    warn, block = Company(emulator_server), Company(emulator_server)
    for co in (warn, block):
        co.create_items([FOUNTAIN])
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with invoice_sync_running(
            emulator_server, [warn, block], kafka_settings, topic_settings, sqlite_database_settings, runtime=LADDER
        ) as rt:
            await set_gap_policy(rt, warn, "warn")
            await set_gap_policy(rt, block, "block")
            warn_customer, _ = await link_customer(kafka, rt, warn)
            block_customer, _ = await link_customer(kafka, rt, block)

            def invoice(co: Company, customer: uuid.UUID, number: int) -> Any:
                lines = lines_of(co, [(FOUNTAIN, "1")])
                return invoice_created(co, invoice_payload(co, customer, f"INV-{number:06d}", lines))

            first_warn, skipped_warn = invoice(warn, warn_customer, 1), invoice(warn, warn_customer, 3)
            await kafka.publish(first_warn)
            await outcomes(kafka, [first_warn])
            await kafka.publish(skipped_warn)
            warned = (await outcomes(kafka, [skipped_warn]))[skipped_warn.event_id]["payload"]
            assert warned["action"] == "created"
            assert warned["warnings"] == [
                {
                    "code": "number_gap",
                    "message": "invoice number INV-000003 follows INV-000001: INV-000002 has not been seen",
                }
            ]

            first, third, second = (invoice(block, block_customer, n) for n in (1, 3, 2))
            await kafka.publish(first)
            await outcomes(kafka, [first])
            await kafka.publish(third)
            results = Results(kafka)
            await _until(lambda: _status(results, third) == "retrying", results)
            assert [r["DocNumber"] for r in block.invoices()] == ["INV-000001"], "blocked while INV-000002 may come"
            await kafka.publish(second)
            found = await outcomes(kafka, [second, third])
            assert {found[e.event_id]["event_type"] for e in (second, third)} == {"SyncCompleted"}
            assert sorted(r["DocNumber"] for r in block.invoices()) == ["INV-000001", "INV-000002", "INV-000003"]

            stranded = invoice(block, block_customer, 10)
            await kafka.publish(stranded)
            failed = (await outcomes(kafka, [stranded]))[stranded.event_id]
            assert failed["event_type"] == "SyncFailed"
            assert "INV-000004 to INV-000009 has not been seen" in failed["payload"]["message"]
            assert "blocks invoices after a gap" in failed["payload"]["message"]
            assert len(block.invoices()) == 3


async def test_invalid_invoices_and_a_company_without_custom_numbers_fail_permanently_naming_the_cause(
    emulator_server: ServerHandle,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    good, numbered_by_qbo = Company(emulator_server), Company(emulator_server, custom_txn_numbers=False)
    for co in (good, numbered_by_qbo):
        co.create_items([FOUNTAIN])
    async with Kafka(kafka_settings, topic_settings) as kafka:
        await create_topics(kafka)
        async with invoice_sync_running(
            emulator_server, [good, numbered_by_qbo], kafka_settings, topic_settings, sqlite_database_settings
        ) as rt:
            customer, _ = await link_customer(kafka, rt, good)
            other, _ = await link_customer(kafka, rt, numbered_by_qbo)
            lines = lines_of(good, [(FOUNTAIN, "1")])
            too_long = invoice_payload(good, customer, "INV-2026-NORTH-0000001", lines)
            due_first = invoice_payload(good, customer, "INV-000002", lines)
            due_first = due_first.model_copy(update={"due_date": due_first.invoice_date - timedelta(days=1)})
            no_custom = invoice_payload(
                numbered_by_qbo, other, "INV-000001", lines_of(numbered_by_qbo, [(FOUNTAIN, "1")])
            )
            events = [
                invoice_created(good, too_long),
                invoice_created(good, due_first),
                invoice_created(numbered_by_qbo, no_custom),
            ]
            await kafka.publish(*events)
            found = await outcomes(kafka, events)
            length, dates, custom = (found[e.event_id]["payload"] for e in events)
            assert "invoice_number" in length["message"]
            assert "at most 21" in length["message"]
            assert "due_date" in dates["message"]
            assert custom["error_code"] == "custom_txn_numbers_off"
            assert "Custom transaction numbers: On" in custom["hint"]
            assert {p["error_class"] for p in (length, dates, custom)} == {"permanent"}
            assert good.invoices() == []
            assert numbered_by_qbo.invoices() == []
            stored = await document(rt, good, "invoice", too_long.invoice_id)
            assert stored is not None
            assert stored.status == "failed"
