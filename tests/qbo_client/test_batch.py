"""Batch: chunks of 30, stable per-chunk requestids, bIds, per-item outcomes mapped to the error classes."""

from __future__ import annotations

import json

import httpx
import pytest

from qbsync.qbo import (
    BatchOperation,
    QboAuthenticationError,
    QboDuplicateNameError,
    QboQuery,
    QboServerError,
    QboStaleObjectError,
)
from tests.qbo_client.fakes import ORG, RefreshingTokens, ScriptedQbo, fault, json_response, make_client

TIME = "2024-05-01T10:00:00-07:00"


def batch_echo(request: httpx.Request) -> httpx.Response:
    """Creates succeed, except names starting with 'dup' (6240); updates with SyncToken 'old' are stale (5010)."""
    items = json.loads(request.content)["BatchItemRequest"]
    out = []
    for item in reversed(items):  # QBO keys results by bId; order is not to be trusted
        if "Query" in item:
            out.append(
                {"bId": item["bId"], "QueryResponse": {"Item": [{"Id": "1"}], "startPosition": 1, "maxResults": 1}}
            )
            continue
        body = item["Customer"]
        if item["operation"] == "update" and body.get("SyncToken") == "old":
            out.append({"bId": item["bId"], "Fault": fault("5010", "Stale Object Error")["Fault"]})
        elif str(body.get("DisplayName", "")).startswith("dup"):
            out.append({"bId": item["bId"], "Fault": fault("6240", "Duplicate Name Exists Error")["Fault"]})
        else:
            out.append({"bId": item["bId"], "Customer": {"Id": item["bId"][1:], **body}})
    return json_response(200, {"BatchItemResponse": out, "time": TIME})


def creates(n: int) -> list[BatchOperation]:
    return [BatchOperation.create("Customer", {"DisplayName": f"dup{i}" if i % 7 == 3 else f"C{i}"}) for i in range(n)]


async def test_65_items_go_in_chunks_of_30_with_results_in_input_order() -> None:
    qbo = ScriptedQbo(default=batch_echo)
    client, _ = make_client(qbo)
    async with client:
        results = await client.company(ORG).batch(creates(65), request_id_prefix="evt-42")
    sizes = [len(r.json()["BatchItemRequest"]) for r in qbo.requests]
    assert sizes == [30, 30, 5]
    assert [r.index for r in results] == list(range(65))
    for result in results:
        if result.index % 7 == 3:
            assert isinstance(result.error, QboDuplicateNameError)
            assert result.entity is None
        else:
            assert result.ok
            assert result.entity == {"Id": str(result.index), "DisplayName": f"C{result.index}"}


async def test_batch_requestids_are_short_distinct_and_stable_across_calls() -> None:
    qbo = ScriptedQbo(default=batch_echo)
    client, _ = make_client(qbo)
    async with client:
        company = client.company(ORG)
        await company.batch(creates(61), request_id_prefix="evt-42")
        await company.batch(creates(61), request_id_prefix="evt-42")
    ids = [r.params["requestid"] for r in qbo.requests]
    assert all(len(i) <= 36 for i in ids)
    assert len(set(ids[:3])) == 3
    assert ids[:3] == ids[3:]
    bids = [item["bId"] for r in qbo.requests[:3] for item in r.json()["BatchItemRequest"]]
    assert len(set(bids)) == 61
    assert all(len(b) <= 10 for b in bids)


async def test_batch_item_bodies_for_update_void_delete_and_query() -> None:
    qbo = ScriptedQbo(default=batch_echo)
    client, _ = make_client(qbo)
    ops = [
        BatchOperation.update("Customer", {"Id": "5", "SyncToken": "old", "Active": False}),
        BatchOperation.update("Customer", {"Id": "6", "SyncToken": "2", "Active": False}),
        BatchOperation.query(QboQuery.select("Item").where("Name", "=", "Widget")),
    ]
    async with client:
        results = await client.company(ORG).batch(ops, request_id_prefix="p")
    assert isinstance(results[0].error, QboStaleObjectError)
    assert results[1].ok
    assert results[2].query_page is not None
    assert results[2].query_page.rows == [{"Id": "1"}]
    items = qbo.requests[0].json()["BatchItemRequest"]
    assert items[0] == {
        "bId": "b0",
        "operation": "update",
        "Customer": {"Id": "5", "SyncToken": "old", "Active": False, "sparse": True},
    }
    assert items[2] == {"bId": "b2", "Query": "SELECT * FROM Item WHERE Name = 'Widget'"}
    assert BatchOperation.void("Invoice", "9", "1").to_item("b9") == {
        "bId": "b9",
        "operation": "update",
        "Invoice": {"Id": "9", "SyncToken": "1", "sparse": True},
        "optionsData": "void",
    }
    assert BatchOperation.delete("Invoice", "9", "1").to_item("b1")["operation"] == "delete"


async def test_a_failed_chunk_gives_its_items_that_error_and_later_chunks_still_run() -> None:
    qbo = ScriptedQbo([batch_echo, json_response(503, fault("10000"))], default=batch_echo)
    client, _ = make_client(qbo)
    async with client:
        results = await client.company(ORG).batch(creates(70), request_id_prefix="p")
    assert len(qbo.requests) == 3  # a batch is a write: the 503 is not retried in place
    assert all(isinstance(r.error, QboServerError) for r in results[30:60])
    assert sum(r.ok for r in results[60:]) == 10 - sum(1 for i in range(60, 70) if i % 7 == 3)


async def test_auth_failure_in_a_batch_is_raised() -> None:
    unauthorized = json_response(401, fault("3200", "AuthenticationFailed"))
    qbo = ScriptedQbo([unauthorized, unauthorized])
    client, _ = make_client(qbo, tokens=RefreshingTokens(tokens=("a", "b")))
    async with client:
        with pytest.raises(QboAuthenticationError):
            await client.company(ORG).batch(creates(3), request_id_prefix="p")


async def test_a_missing_item_result_is_an_error_outcome() -> None:
    qbo = ScriptedQbo([json_response(200, {"BatchItemResponse": [], "time": TIME})])
    client, _ = make_client(qbo)
    async with client:
        (result,) = await client.company(ORG).batch(creates(1), request_id_prefix="p")
    assert result.error is not None
    assert "b0" in str(result.error)
