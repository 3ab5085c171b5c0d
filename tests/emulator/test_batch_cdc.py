"""``/batch`` (≤ 30 independent items keyed by bId) and ``/cdc`` (30-day look-back, 1000 cap, deletes)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from qbo_emulator import EmulatorConfig, FidelityConfig
from tests.emulator.helpers import Api, fault_of, line
from tests.fixtures.emulator import EmulatorHandle


async def batch(api: Api, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = await api.post("batch", {"BatchItemRequest": items})
    assert response.status_code == 200, response.text
    assert "time" in response.json()
    result: list[dict[str, Any]] = response.json()["BatchItemResponse"]
    return result


async def test_batch_items_succeed_or_fail_independently(api: Api) -> None:
    taken = await api.create("Customer", {"DisplayName": "Taken"})
    invoice = await api.create("Invoice", {"CustomerRef": {"value": taken["Id"]}, "Line": [line(10)]})
    results = await batch(
        api,
        [
            {"bId": "b1", "operation": "create", "Customer": {"DisplayName": "Fresh"}},
            {"bId": "b2", "operation": "create", "Customer": {"DisplayName": "Taken"}},
            {"bId": "b3", "operation": "update", "Customer": {"Id": taken["Id"], "SyncToken": "9", "sparse": True}},
            {"bId": "b4", "Query": "select * from Customer where DisplayName = 'Taken'"},
            {"bId": "b5", "operation": "delete", "Invoice": {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}},
            {"bId": "b6", "Query": "select * from Nothing"},
        ],
    )
    by_id = {r["bId"]: r for r in results}
    assert [r["bId"] for r in results] == ["b1", "b2", "b3", "b4", "b5", "b6"]
    assert by_id["b1"]["Customer"]["DisplayName"] == "Fresh"
    assert by_id["b2"]["Fault"]["Error"][0]["code"] == "6240"
    assert by_id["b2"]["Fault"]["type"] == "ValidationFault"
    assert by_id["b3"]["Fault"]["Error"][0]["code"] == "5010"
    assert by_id["b4"]["QueryResponse"]["Customer"][0]["Id"] == taken["Id"]
    assert by_id["b5"]["Invoice"] == {"domain": "QBO", "status": "Deleted", "Id": invoice["Id"]}
    assert by_id["b6"]["Fault"]["Error"][0]["code"] in {"4000", "4001"}


async def test_batch_void_and_allowduplicatedocnum_go_in_options_data(api: Api) -> None:
    buyer = await api.create("Customer", {"DisplayName": "Opt"})
    invoice = await api.create("Invoice", {"CustomerRef": {"value": buyer["Id"]}, "DocNumber": "D1", "Line": [line(5)]})
    results = await batch(
        api,
        [
            {
                "bId": "v",
                "operation": "update",
                "optionsData": "void",
                "Invoice": {"Id": invoice["Id"], "SyncToken": "0"},
            },
            {
                "bId": "d",
                "operation": "create",
                "optionsData": "include=allowduplicatedocnum",
                "Invoice": {"CustomerRef": {"value": buyer["Id"]}, "DocNumber": "D1", "Line": [line(1)]},
            },
            {
                "bId": "x",
                "operation": "create",
                "Invoice": {"CustomerRef": {"value": buyer["Id"]}, "DocNumber": "D1", "Line": [line(1)]},
            },
        ],
    )
    assert results[0]["Invoice"]["PrivateNote"] == "Voided"
    assert results[1]["Invoice"]["DocNumber"] == "D1"
    assert results[2]["Fault"]["Error"][0]["code"] == "6140"


async def test_more_than_30_items_is_1040_and_nothing_runs(api: Api) -> None:
    items = [{"bId": str(n), "operation": "create", "Customer": {"DisplayName": f"N{n}"}} for n in range(31)]
    response = await api.post("batch", {"BatchItemRequest": items})
    assert response.status_code == 400
    assert fault_of(response)["code"] == "1040"
    assert (await api.query("select count(*) from Customer"))["totalCount"] == 0
    assert len(await batch(api, items[:30])) == 30


async def test_batch_writes_are_replayed_by_requestid(api: Api) -> None:
    items = [{"bId": "1", "operation": "create", "Customer": {"DisplayName": "Batched"}}]
    first = await api.post("batch", {"BatchItemRequest": items}, requestid="batch-1")
    second = await api.post("batch", {"BatchItemRequest": items}, requestid="batch-1")
    assert first.content == second.content
    assert (await api.query("select count(*) from Customer where DisplayName = 'Batched'"))["totalCount"] == 1


# ---------------------------------------------------------------------------- CDC


async def cdc(api: Api, entities: str, since: str) -> list[dict[str, Any]]:
    response = await api.get("cdc", entities=entities, changedSince=since)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "time" in body
    result: list[dict[str, Any]] = body["CDCResponse"][0]["QueryResponse"]
    return result


async def test_cdc_returns_changes_and_deletions_since_a_time(emulator: EmulatorHandle, api: Api) -> None:
    clock = emulator.core.clock
    before = clock.now()
    old = await api.create("Customer", {"DisplayName": "Before"})
    clock.advance(120)
    since = clock.now().isoformat()
    changed = await api.create("Customer", {"DisplayName": "After"})
    await api.post("customer", {"Id": old["Id"], "SyncToken": "0", "sparse": True, "Notes": "touched"})
    invoice = await api.create("Invoice", {"CustomerRef": {"value": changed["Id"]}, "Line": [line(3)]})
    await api.post("invoice", {"Id": invoice["Id"], "SyncToken": "0"}, operation="delete")
    customers, invoices = await cdc(api, "Customer,Invoice", since)
    assert [c["Id"] for c in customers["Customer"]] == [changed["Id"], old["Id"]]
    assert customers["Customer"][1]["Notes"] == "touched"
    deleted = invoices["Invoice"]
    assert deleted == [{"domain": "QBO", "status": "Deleted", "Id": invoice["Id"], "MetaData": deleted[0]["MetaData"]}]
    assert "LastUpdatedTime" in deleted[0]["MetaData"]
    everything = await cdc(api, "Customer", (before - timedelta(seconds=1)).isoformat())
    assert len(everything[0]["Customer"]) == 2


async def test_cdc_with_nothing_changed_has_no_entity_key(api: Api, emulator: EmulatorHandle) -> None:
    emulator.core.clock.advance(5)
    result = await cdc(api, "Payment", emulator.core.clock.now().isoformat())
    assert result == [{}]


async def test_cdc_refuses_more_than_30_days_back_and_tax_entities(emulator: EmulatorHandle, api: Api) -> None:
    too_old = (emulator.core.clock.now() - timedelta(days=31)).isoformat()
    response = await api.get("cdc", entities="Customer", changedSince=too_old)
    assert response.status_code == 400
    assert "older than fixed days is not supported" in fault_of(response)["Detail"]
    recent = (emulator.core.clock.now() - timedelta(days=29)).isoformat()
    assert (await api.get("cdc", entities="Customer", changedSince=recent)).status_code == 200
    for excluded in ("TaxCode", "TaxRate"):
        assert (await api.get("cdc", entities=excluded, changedSince=recent)).status_code == 400


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(fidelity=FidelityConfig(cdc_max_objects=25))])
async def test_cdc_caps_each_entity_oldest_first_so_callers_can_advance(emulator: EmulatorHandle, api: Api) -> None:
    start = emulator.core.clock.now().isoformat()
    created = []
    for n in range(60):
        created.append((await api.create("Customer", {"DisplayName": f"Bulk {n:02d}"}))["Id"])
        emulator.core.clock.advance(1)
    seen: list[str] = []
    since = start
    for _ in range(10):
        page = (await cdc(api, "Customer", since))[0].get("Customer", [])
        assert len(page) <= 25
        new = [c["Id"] for c in page if c["Id"] not in seen]
        seen.extend(new)
        if len(page) < 25:
            break
        since = page[-1]["MetaData"]["LastUpdatedTime"]
    assert seen == created


async def test_cdc_accepts_dates_and_naive_company_local_times(emulator: EmulatorHandle, api: Api) -> None:
    await api.create("Customer", {"DisplayName": "Today"})
    local = emulator.core.clock.now().astimezone(emulator.core.company(api.realm).zone)  # type: ignore[union-attr]
    day = local.date().isoformat()
    assert (await cdc(api, "Customer", day))[0]["Customer"][0]["DisplayName"] == "Today"
    naive = (local - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert len((await cdc(api, "Customer", naive))[0]["Customer"]) == 1
