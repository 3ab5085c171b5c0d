"""CDC windowing past the 1,000-objects cap: advance changedSince, de-duplicate, stay bounded, say when incomplete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.qbo_client.fakes import ORG, ScriptedQbo, json_response, make_client

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def stamp(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def cdc_server(log: dict[str, list[dict[str, object]]], cap: int = 1000) -> ScriptedQbo:
    """A CDC endpoint over a change log: per entity, changes at or after changedSince, oldest first, capped."""

    def answer(request: httpx.Request) -> httpx.Response:
        since = datetime.fromisoformat(request.url.params["changedSince"])
        responses = []
        for entity in request.url.params["entities"].split(","):
            rows = [r for r in log.get(entity, []) if datetime.fromisoformat(r["MetaData"]["LastUpdatedTime"]) >= since]  # type: ignore[index]
            rows.sort(key=lambda r: r["MetaData"]["LastUpdatedTime"])  # type: ignore[index]
            block: dict[str, object] = {"startPosition": 1, "maxResults": min(len(rows), cap)}
            if rows:
                block[entity] = rows[:cap]
            responses.append(block)
        return json_response(200, {"CDCResponse": [{"QueryResponse": responses}], "time": stamp(10**6)})

    return ScriptedQbo(default=answer)


def change(id: int, seconds: int, **extra: object) -> dict[str, object]:
    return {"Id": str(id), "MetaData": {"LastUpdatedTime": stamp(seconds)}, **extra}


async def test_changes_past_the_cap_are_all_collected_once_each() -> None:
    customers = [change(i, i, DisplayName=f"v1-{i}") for i in range(1, 2501)]
    customers += [change(i, 3000 + i, DisplayName=f"v2-{i}") for i in (5, 1500)]  # updated again later
    customers.append(change(77, 5000, status="Deleted"))
    invoices = [change(i, i) for i in range(1, 11)]
    qbo = cdc_server({"Customer": customers, "Invoice": invoices})
    client, _ = make_client(qbo)
    async with client:
        result = await client.company(ORG).cdc(["Customer", "Invoice"], T0)
    assert result.complete
    assert result.incomplete_entities == ()
    ids = [row["Id"] for row in result.changes["Customer"]]
    assert len(ids) == len(set(ids)) == 2500
    by_id = {row["Id"]: row for row in result.changes["Customer"]}
    assert by_id["5"]["DisplayName"] == "v2-5"
    assert by_id["1500"]["DisplayName"] == "v2-1500"
    assert result.deleted_ids("Customer") == ["77"]
    assert len(result.changed("Customer")) == 2499
    assert len(result.changes["Invoice"]) == 10
    assert result.server_time == stamp(10**6)
    assert [r.params["entities"] for r in qbo.requests] == ["Customer,Invoice", "Customer", "Customer"]
    assert result.windows == 3


async def test_a_full_window_that_cannot_advance_is_reported_incomplete() -> None:
    same_second = [change(i, 60) for i in range(1, 1501)]  # 1500 changes, one timestamp: no cursor can split them
    qbo = cdc_server({"Customer": same_second})
    client, _ = make_client(qbo)
    async with client:
        result = await client.company(ORG).cdc(["Customer"], T0)
    assert not result.complete
    assert result.incomplete_entities == ("Customer",)
    assert len(result.changes["Customer"]) == 1000
    assert len(qbo.requests) == 2


async def test_window_count_is_bounded() -> None:
    qbo = cdc_server({"Customer": [change(i, i) for i in range(1, 5001)]}, cap=100)
    client, _ = make_client(qbo, cdc_object_cap=100, cdc_max_windows=3)
    async with client:
        result = await client.company(ORG).cdc(["Customer"], T0)
    assert not result.complete
    assert result.windows == 3 == len(qbo.requests)
    assert len(result.changes["Customer"]) == 298  # 100 + 99 + 99 new (each window repeats its boundary row)


async def test_changed_since_must_be_aware_and_is_sent_as_iso() -> None:
    qbo = cdc_server({})
    client, _ = make_client(qbo)
    async with client:
        with pytest.raises(ValueError):
            await client.company(ORG).cdc(["Customer"], datetime(2024, 5, 1))
        await client.company(ORG).cdc(["Customer"], T0)
    assert qbo.requests[0].params["changedSince"] == "2024-05-01T00:00:00+00:00"
