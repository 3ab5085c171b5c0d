"""Injected faults (5xx JSON, HTML 502/503, timeouts, dropped connections, 401 storms, revocation) and latency."""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

from qbo_emulator import DEV_CLIENT_ID, DEV_CLIENT_SECRET, EmulatorConfig, EmulatorCore, LatencyConfig
from qbo_emulator.chaos import FaultRule
from tests.emulator.helpers import Api, fault_of
from tests.fixtures.emulator import EmulatorHandle, ServerHandle


async def add_fault(client: httpx.AsyncClient, **rule: Any) -> dict[str, Any]:
    response = await client.post("/_admin/faults", json=rule)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def names(api: Api, name: str) -> int:
    return int((await api.query(f"select count(*) from Customer where DisplayName = '{name}'"))["totalCount"])


async def test_500_is_a_json_system_fault(api: Api, emulator_client: httpx.AsyncClient) -> None:
    await add_fault(emulator_client, kind="http_error", status=500, next_n=1)
    response = await api.get(f"companyinfo/{api.realm}")
    assert response.status_code == 500
    error = fault_of(response)
    assert error["code"] == "10000"
    assert response.json()["Fault"]["type"] == "SystemFault"
    assert (await api.get(f"companyinfo/{api.realm}")).status_code == 200


@pytest.mark.parametrize("status", [502, 503])
async def test_gateway_errors_arrive_as_html(api: Api, emulator_client: httpx.AsyncClient, status: int) -> None:
    await add_fault(emulator_client, kind="http_error", status=status, next_n=1)
    response = await api.get(f"companyinfo/{api.realm}")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert f"<h1>{status} " in response.text
    with pytest.raises(ValueError):
        response.json()


async def test_timeouts_hold_the_request_then_answer_504(api: Api, emulator_client: httpx.AsyncClient) -> None:
    await add_fault(emulator_client, kind="timeout", hold_s=0.3, operation="create", next_n=1)
    started = time.monotonic()
    response = await api.post("customer", {"DisplayName": "Slow"})
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 504
    assert await names(api, "Slow") == 0


async def test_a_client_timeout_against_a_held_request_writes_nothing(emulator_server: ServerHandle) -> None:
    realm = emulator_server.create_company(name="Held")
    async with httpx.AsyncClient(base_url=emulator_server.base_url, timeout=0.3) as client:
        api = Api(client, realm, emulator_server.issue_tokens(realm)["access_token"])
        await add_fault(client, kind="timeout", hold_s=2, operation="create", next_n=1)
        with pytest.raises(httpx.ReadTimeout):
            await api.post("customer", {"DisplayName": "Never"})
        client.timeout = httpx.Timeout(10)
        assert await names(api, "Never") == 0


async def test_dropped_connection_after_the_write_over_real_http(emulator_server: ServerHandle) -> None:
    realm = emulator_server.create_company(name="Dropper")
    async with httpx.AsyncClient(base_url=emulator_server.base_url, timeout=10) as client:
        api = Api(client, realm, emulator_server.issue_tokens(realm)["access_token"])
        await add_fault(client, kind="drop", operation="create", entity="customer", next_n=1)
        with pytest.raises(httpx.RemoteProtocolError):
            await api.post("customer", {"DisplayName": "Ghost"})
        assert await names(api, "Ghost") == 1
        await add_fault(client, kind="drop", operation="create", entity="customer", after_write=False, next_n=1)
        with pytest.raises(httpx.RemoteProtocolError):
            await api.post("customer", {"DisplayName": "Never Written"})
        assert await names(api, "Never Written") == 0


async def test_401_storm_for_the_next_requests(api: Api, emulator_client: httpx.AsyncClient) -> None:
    await add_fault(emulator_client, kind="unauthorized", next_n=3)
    statuses = [(await api.get(f"companyinfo/{api.realm}")).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 200]


async def test_revocation_fault_disconnects_the_grant(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient
) -> None:
    realm = emulator.create_company(name="Revoked")
    tokens = emulator.issue_tokens(realm)
    api = Api(emulator_client, realm, tokens["access_token"])
    await add_fault(emulator_client, kind="revoke", realm_id=realm, next_n=1)
    assert (await api.get(f"companyinfo/{realm}")).status_code == 401
    assert (await api.get(f"companyinfo/{realm}")).status_code == 401
    basic = base64.b64encode(f"{DEV_CLIENT_ID}:{DEV_CLIENT_SECRET}".encode()).decode()
    refused = await emulator_client.post(
        "/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert refused.json() == {"error": "invalid_grant"}


async def test_every_kth_matching_request(api: Api, emulator_client: httpx.AsyncClient) -> None:
    await add_fault(emulator_client, kind="http_error", status=503, operation="read", every_k=3)
    statuses = [(await api.get(f"companyinfo/{api.realm}")).status_code for _ in range(7)]
    assert statuses == [200, 200, 503, 200, 200, 503, 200]


def pattern(seed: int) -> list[bool]:
    core = EmulatorCore(EmulatorConfig(fault_seed=seed))
    core.chaos.add(FaultRule(kind="http_error", probability=0.3))
    return [core.chaos.pick("r", "c", "read", None) is not None for _ in range(300)]


def test_probability_is_seeded_and_roughly_honoured() -> None:
    first, again, other = pattern(7), pattern(7), pattern(8)
    assert first == again
    assert first != other
    assert 45 <= sum(first) <= 135


async def test_time_window_on_the_emulator_clock(
    emulator: EmulatorHandle, api: Api, emulator_client: httpx.AsyncClient
) -> None:
    now = emulator.core.clock.now()
    start, end = now + timedelta(minutes=20), now + timedelta(minutes=40)
    await add_fault(emulator_client, kind="http_error", status=503, start_at=start.isoformat(), end_at=end.isoformat())
    assert (await api.get(f"companyinfo/{api.realm}")).status_code == 200
    emulator.core.clock.advance(20 * 60)
    assert (await api.get(f"companyinfo/{api.realm}")).status_code == 503
    emulator.core.clock.advance(20 * 60)
    assert (await api.get(f"companyinfo/{api.realm}")).status_code == 200


async def test_rules_match_company_operation_and_entity(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient, api: Api
) -> None:
    other_realm = emulator.create_company(name="Other")
    other = Api(emulator_client, other_realm, emulator.issue_tokens(other_realm)["access_token"])
    await add_fault(
        emulator_client, kind="http_error", status=503, realm_id=api.realm, operation="create", entity="invoice"
    )
    assert (await api.post("customer", {"DisplayName": "Fine"})).status_code == 200
    assert (await other.post("invoice", {"CustomerRef": {"value": "1"}, "Line": []})).status_code == 400
    refused = await api.post("invoice", {"CustomerRef": {"value": "1"}, "Line": []})
    assert refused.status_code == 503


async def test_throttle_fault_and_fault_admin(api: Api, emulator_client: httpx.AsyncClient) -> None:
    rule = await add_fault(emulator_client, kind="throttle", operation="query")
    assert (
        await api.client.get(api.path("query"), params={"query": "select * from Term"}, headers=api.headers)
    ).status_code == 429
    listed = (await emulator_client.get("/_admin/faults")).json()
    assert [r["id"] for r in listed] == [rule["id"]]
    assert listed[0]["fired"] == 1
    assert (await emulator_client.delete(f"/_admin/faults/{rule['id']}")).json() == {"removed": 1}
    assert (await emulator_client.get("/_admin/faults")).json() == []


async def test_latency_delays_each_response_at_least_the_median(api: Api, emulator_client: httpx.AsyncClient) -> None:
    set_ = await emulator_client.put("/_admin/latency", json={"realm_id": api.realm, "median_ms": 150})
    assert set_.status_code == 200
    for _ in range(3):
        started = time.monotonic()
        assert (await api.get(f"companyinfo/{api.realm}")).status_code == 200
        assert time.monotonic() - started >= 0.15


def test_latency_samples_follow_the_configured_tail() -> None:
    core = EmulatorCore()
    core.chaos.set_latency("r", LatencyConfig(median_ms=100, p99_ms=1000, seed=3))
    samples = sorted(core.chaos.delay_s("r") for _ in range(2000))
    median, p99 = samples[1000], samples[1980]
    assert 0.08 < median < 0.125
    assert 0.6 < p99 < 1.6
    assert max(samples) <= 60


async def test_token_endpoint_faults(emulator: EmulatorHandle, emulator_client: httpx.AsyncClient) -> None:
    realm = emulator.create_company(name="Tokens")
    tokens = emulator.issue_tokens(realm)
    basic = base64.b64encode(f"{DEV_CLIENT_ID}:{DEV_CLIENT_SECRET}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}"}
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    await add_fault(emulator_client, kind="http_error", status=503, operation="token", next_n=1)
    unavailable = await emulator_client.post("/oauth2/v1/tokens/bearer", data=form, headers=headers)
    assert unavailable.status_code == 503
    assert unavailable.headers["content-type"].startswith("text/html")
    emulator.core.clock.advance(86_400)  # the next refresh rotates the token...
    await add_fault(emulator_client, kind="drop", operation="token", next_n=1)
    with pytest.raises(httpx.RemoteProtocolError):  # ...and its answer is lost
        await emulator_client.post("/oauth2/v1/tokens/bearer", data=form, headers=headers)
    lost = await emulator_client.post("/oauth2/v1/tokens/bearer", data=form, headers=headers)
    assert lost.json() == {"error": "invalid_grant"}
