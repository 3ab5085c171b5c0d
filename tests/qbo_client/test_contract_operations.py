"""Contract: every client operation against the emulator over real HTTP (the emulator plays QBO)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from qbsync.qbo import BatchOperation, QboQuery, QboValidationError
from tests.qbo_client.conftest import Live


async def service_item(live: Live) -> dict[str, Any]:
    (item,) = (await live.company.query(QboQuery.select("Item").where("Name", "=", "Services"))).rows
    return item


def sales_line(item_id: str, qty: int, price: str) -> dict[str, Any]:
    return {
        "DetailType": "SalesItemLineDetail",
        "Amount": Decimal(price) * qty,
        "SalesItemLineDetail": {"ItemRef": {"value": item_id}, "Qty": qty, "UnitPrice": Decimal(price)},
    }


async def new_customer(live: Live, name: str, rid: str) -> dict[str, Any]:
    return await live.company.create("Customer", {"DisplayName": name}, request_id=rid)


async def test_customer_create_read_sparse_and_full_update(live: Live) -> None:
    company = live.company
    created = await new_customer(live, "Ada Lovelace", "c-create")
    assert created["SyncToken"] == "0"
    assert (await company.read("Customer", created["Id"]))["DisplayName"] == "Ada Lovelace"

    sparse = await company.update(
        "Customer",
        {"Id": created["Id"], "SyncToken": created["SyncToken"], "CompanyName": "Analytical Engines"},
        request_id="c-sparse",
    )
    assert sparse["SyncToken"] == "1"
    assert (sparse["DisplayName"], sparse["CompanyName"]) == ("Ada Lovelace", "Analytical Engines")

    full = await company.update(
        "Customer",
        {"Id": created["Id"], "SyncToken": sparse["SyncToken"], "DisplayName": "Ada King"},
        request_id="c-full",
        sparse=False,
    )
    assert full["DisplayName"] == "Ada King"
    assert "CompanyName" not in full  # a full update clears writable fields left out

    inactive = await company.update(
        "Customer", {"Id": full["Id"], "SyncToken": full["SyncToken"], "Active": False}, request_id="c-deactivate"
    )
    assert inactive["Active"] is False


async def test_invoice_create_void_delete_and_payment_void(live: Live) -> None:
    company = live.company
    item = await service_item(live)
    customer = await new_customer(live, "Grace Hopper", "c1")
    invoice = await company.create(
        "Invoice",
        {"CustomerRef": {"value": customer["Id"]}, "DocNumber": "INV-1", "Line": [sales_line(item["Id"], 3, "40.00")]},
        request_id="inv-1",
    )
    assert invoice["DocNumber"] == "INV-1"
    assert invoice["TotalAmt"] >= Decimal("120")
    assert not isinstance(invoice["TotalAmt"], float)  # exact: int or Decimal, never binary float

    payment = await company.create(
        "Payment",
        {
            "CustomerRef": {"value": customer["Id"]},
            "TotalAmt": Decimal("50.00"),
            "Line": [{"Amount": Decimal("50.00"), "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        },
        request_id="pay-1",
    )
    paid = await company.read("Invoice", invoice["Id"])
    assert paid["Balance"] == invoice["TotalAmt"] - Decimal("50.00")

    voided_payment = await company.void("Payment", payment["Id"], payment["SyncToken"], request_id="pay-1-void")
    assert voided_payment["TotalAmt"] == 0
    invoice = await company.read("Invoice", invoice["Id"])
    assert invoice["Balance"] == invoice["TotalAmt"]  # the payment no longer applies

    voided = await company.void("Invoice", invoice["Id"], invoice["SyncToken"], request_id="inv-1-void")
    assert (voided["Id"], voided["TotalAmt"], voided["Balance"]) == (invoice["Id"], 0, 0)

    other = await company.create(
        "Invoice",
        {"CustomerRef": {"value": customer["Id"]}, "Line": [sales_line(item["Id"], 1, "10.00")]},
        request_id="inv-2",
    )
    deleted = await company.delete("Invoice", other["Id"], other["SyncToken"], request_id="inv-2-delete")
    assert deleted["status"] == "Deleted"
    assert await company.count(QboQuery.select("Invoice").where("Id", "=", other["Id"])) == 0


async def test_hard_names_work_end_to_end_and_injection_does_not(live: Live) -> None:
    company = live.company
    names = ["O'Brien & Sons", "Zoë Ångström \u2013 東京支店", "back\\slash 'quoted'", "N" * 500]
    for n, name in enumerate(names):
        await new_customer(live, name, f"hard-{n}")
    await new_customer(live, "Victim", "victim")
    for name in names:
        page = await company.query(QboQuery.select("Customer").where("DisplayName", "=", name))
        assert [row["DisplayName"] for row in page.rows] == [name]

    crafted = "x' OR DisplayName LIKE '%"
    attack = await company.query(QboQuery.select("Customer").where("DisplayName", "=", crafted))
    assert attack.rows == []  # taken literally: no customer has that name, nothing else leaks
    await new_customer(live, crafted, "crafted")
    attack = await company.query(QboQuery.select("Customer").where("DisplayName", "=", crafted))
    assert [row["DisplayName"] for row in attack.rows] == [crafted]


async def test_250_line_invoice_and_21_character_docnumber(live: Live) -> None:
    item = await service_item(live)
    customer = await new_customer(live, "Big Orders Inc", "c-big")
    doc_number = "2024-INV-000000000001"
    assert len(doc_number) == 21
    lines = [sales_line(item["Id"], n % 5 + 1, f"{n}.25") for n in range(1, 251)]
    invoice = await live.company.create(
        "Invoice",
        {"CustomerRef": {"value": customer["Id"]}, "DocNumber": doc_number, "Line": lines},
        request_id="inv-big",
    )
    sales_lines = [line for line in invoice["Line"] if line.get("DetailType") == "SalesItemLineDetail"]
    assert len(sales_lines) == 250
    assert [line["Amount"] for line in sales_lines] == [line["Amount"] for line in lines]  # order kept, exact
    assert invoice["DocNumber"] == doc_number
    found = await live.company.query(QboQuery.select("Invoice").where("DocNumber", "=", doc_number))
    assert [row["Id"] for row in found.rows] == [invoice["Id"]]


async def test_batch_then_query_all_pages_past_1000_and_count_agrees(live: Live) -> None:
    ops = [BatchOperation.create("Customer", {"DisplayName": f"Bulk {n:04d}"}) for n in range(1050)]
    ops.insert(10, BatchOperation.create("Customer", {"DisplayName": "Bulk 0003"}))  # a duplicate: 6240 item
    results = await live.company.batch(ops, request_id_prefix="bulk-load")
    assert len(results) == 1051
    failures = [r for r in results if not r.ok]
    assert [(r.index, r.error.code if r.error else None) for r in failures] == [(10, "6240")]

    query = QboQuery.select("Customer").where("DisplayName", "LIKE", "Bulk %").order_by("Id")
    rows = [row async for row in live.company.query_all(query)]
    assert sorted(row["DisplayName"] for row in rows) == [f"Bulk {n:04d}" for n in range(1050)]
    assert await live.company.count(query) == 1050


async def test_batch_replay_with_the_same_prefix_creates_nothing_new(live: Live) -> None:
    ops = [BatchOperation.create("Customer", {"DisplayName": f"Replay {n}"}) for n in range(35)]
    first = await live.company.batch(ops, request_id_prefix="evt-replay")
    again = await live.company.batch(ops, request_id_prefix="evt-replay")
    assert all(r.ok for r in first)
    assert [r.entity["Id"] for r in again if r.entity] == [r.entity["Id"] for r in first if r.entity]
    assert await live.company.count(QboQuery.select("Customer").where("DisplayName", "LIKE", "Replay %")) == 35


async def test_batch_mixes_queries_updates_and_voids(live: Live) -> None:
    item = await service_item(live)
    customer = await new_customer(live, "Mixed Batch", "c-mixed")
    invoice = await live.company.create(
        "Invoice",
        {"CustomerRef": {"value": customer["Id"]}, "Line": [sales_line(item["Id"], 1, "5.00")]},
        request_id="inv-mixed",
    )
    results = await live.company.batch(
        [
            BatchOperation.query(QboQuery.select("Customer").where("DisplayName", "=", "Mixed Batch")),
            BatchOperation.update("Customer", {"Id": customer["Id"], "SyncToken": "7", "Notes": "stale"}),
            BatchOperation.update("Customer", {"Id": customer["Id"], "SyncToken": "0", "Notes": "fresh"}),
            BatchOperation.void("Invoice", invoice["Id"], invoice["SyncToken"]),
        ],
        request_id_prefix="evt-mixed",
    )
    assert results[0].query_page is not None
    assert [row["Id"] for row in results[0].query_page.rows] == [customer["Id"]]
    assert results[1].error is not None
    assert results[1].error.code == "5010"
    assert results[2].entity is not None
    assert results[2].entity["Notes"] == "fresh"
    assert results[3].entity is not None
    assert results[3].entity["TotalAmt"] == 0


async def test_cdc_reports_creates_updates_and_deletes(live: Live) -> None:
    since = await emulator_now(live)
    item = await service_item(live)
    customer = await new_customer(live, "CDC Person", "cdc-c")
    await live.company.update(
        "Customer", {"Id": customer["Id"], "SyncToken": "0", "Notes": "changed"}, request_id="cdc-u"
    )
    invoice = await live.company.create(
        "Invoice",
        {"CustomerRef": {"value": customer["Id"]}, "Line": [sales_line(item["Id"], 1, "1.00")]},
        request_id="cdc-i",
    )
    await live.company.delete("Invoice", invoice["Id"], invoice["SyncToken"], request_id="cdc-d")

    result = await live.company.cdc(["Customer", "Invoice"], since)
    assert result.complete
    assert [(row["Id"], row.get("Notes")) for row in result.changed("Customer")] == [(customer["Id"], "changed")]
    assert result.deleted_ids("Invoice") == [invoice["Id"]]
    assert result.changed("Invoice") == []


async def test_cdc_further_back_than_30_days_is_refused(live: Live) -> None:
    now = await emulator_now(live)
    with pytest.raises(QboValidationError) as info:
        await live.company.cdc(["Customer"], now.replace(year=now.year - 1))
    assert info.value.status == 400


async def test_preferences_and_company_info(live: Live) -> None:
    prefs = await live.company.preferences()
    info = await live.company.company_info()
    assert "SalesFormsPrefs" in prefs
    assert info["CompanyName"]


async def emulator_now(live: Live) -> datetime:
    response = await live.admin.get("/_admin/clock")
    return datetime.fromisoformat(response.json()["now"])
