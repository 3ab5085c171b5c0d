"""``?requestid=`` replay: the original response comes back and nothing is written twice (facts §2)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from qbo_emulator import EmulatorConfig, FidelityConfig, LatencyConfig
from tests.emulator.helpers import Api, fault_of
from tests.fixtures.emulator import EmulatorHandle


async def count_customers(api: Api, name: str) -> int:
    found = await api.query(f"select count(*) from Customer where DisplayName = '{name}'")
    return int(found["totalCount"])


async def test_replay_returns_the_original_response_without_a_second_write(api: Api) -> None:
    first = await api.post("customer", {"DisplayName": "Once"}, requestid="rid-1")
    second = await api.post("customer", {"DisplayName": "Once"}, requestid="rid-1")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert await count_customers(api, "Once") == 1


async def test_replay_ignores_a_changed_payload(api: Api) -> None:
    first = await api.post("customer", {"DisplayName": "Original"}, requestid="rid-2")
    second = await api.post("customer", {"DisplayName": "Different"}, requestid="rid-2")
    assert second.json() == first.json()
    assert await count_customers(api, "Different") == 0


async def test_request_ids_are_scoped_to_one_company(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    apis = []
    for name in ("A", "B"):
        realm = emulator.create_company(name=name)
        apis.append(Api(emulator_client, realm, emulator.issue_tokens(realm)["access_token"]))
    for each in apis:
        assert (await each.post("customer", {"DisplayName": "Shared"}, requestid="same")).status_code == 200
        assert await count_customers(each, "Shared") == 1


async def test_validation_errors_are_replayed_too(api: Api) -> None:
    created = await api.create("Customer", {"DisplayName": "Err"})
    await api.post("customer", {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Notes": "moved on"})
    stale = await api.post("customer", {"Id": created["Id"], "SyncToken": "0", "sparse": True}, requestid="rid-3")
    assert fault_of(stale)["code"] == "5010"
    fixed = await api.post(
        "customer", {"Id": created["Id"], "SyncToken": "1", "sparse": True, "Notes": "x"}, requestid="rid-3"
    )
    assert fixed.content == stale.content


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(fidelity=FidelityConfig(requestid_replay_errors=False))])
async def test_error_replay_can_be_switched_off(api: Api) -> None:
    created = await api.create("Customer", {"DisplayName": "Err2"})
    await api.post("customer", {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Notes": "moved on"})
    stale = await api.post("customer", {"Id": created["Id"], "SyncToken": "0", "sparse": True}, requestid="r")
    assert stale.status_code == 400
    fixed = await api.post(
        "customer", {"Id": created["Id"], "SyncToken": "1", "sparse": True, "Notes": "x"}, requestid="r"
    )
    assert fixed.status_code == 200


async def test_request_id_longer_than_50_is_refused(api: Api) -> None:
    assert (await api.post("customer", {"DisplayName": "L50"}, requestid="r" * 50)).status_code == 200
    response = await api.post("customer", {"DisplayName": "L51"}, requestid="r" * 51)
    assert fault_of(response)["code"] == "2050"
    assert await count_customers(api, "L51") == 0
    batch = {"BatchItemRequest": [{"bId": "1", "operation": "create", "Customer": {"DisplayName": "B"}}]}
    assert fault_of(await api.post("batch", batch, requestid="b" * 37))["element"] == "requestid"


async def test_injected_server_errors_are_not_replayed(api: Api, emulator_client: httpx.AsyncClient) -> None:
    rule = {"kind": "http_error", "status": 500, "operation": "create", "entity": "customer", "next_n": 1}
    assert (await emulator_client.post("/_admin/faults", json=rule)).status_code == 201
    failed = await api.post("customer", {"DisplayName": "Retry Me"}, requestid="rid-5")
    assert failed.status_code == 500
    assert fault_of(failed)["code"] == "10000"
    retried = await api.post("customer", {"DisplayName": "Retry Me"}, requestid="rid-5")
    assert retried.status_code == 200
    assert await count_customers(api, "Retry Me") == 1


async def test_connection_dropped_after_write_then_replay_returns_the_entity(
    api: Api, emulator_client: httpx.AsyncClient
) -> None:
    rule = {"kind": "drop", "operation": "create", "entity": "customer", "next_n": 1}
    await emulator_client.post("/_admin/faults", json=rule)
    with pytest.raises(httpx.TransportError):
        await api.post("customer", {"DisplayName": "Dropped"}, requestid="rid-6")
    assert await count_customers(api, "Dropped") == 1
    replayed = await api.post("customer", {"DisplayName": "Dropped"}, requestid="rid-6")
    assert replayed.status_code == 200
    assert replayed.json()["Customer"]["DisplayName"] == "Dropped"
    assert await count_customers(api, "Dropped") == 1


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(latency=LatencyConfig(median_ms=30))])
async def test_concurrent_duplicates_write_once(api: Api) -> None:
    responses = await asyncio.gather(
        *(api.post("customer", {"DisplayName": "Racer"}, requestid="rid-7") for _ in range(5))
    )
    assert all(r.status_code == 200 for r in responses)
    assert len({r.content for r in responses}) == 1
    assert await count_customers(api, "Racer") == 1


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(fidelity=FidelityConfig(requestid_retention_s=60))])
async def test_a_retention_window_forgets_old_ids(emulator: EmulatorHandle, api: Api) -> None:
    await api.post("customer", {"DisplayName": "Old Id"}, requestid="rid-8")
    emulator.core.clock.advance(61)
    again = await api.post("customer", {"DisplayName": "Old Id"}, requestid="rid-8")
    assert fault_of(again)["code"] == "6240"  # processed anew
