"""Throttling per company + per OAuth app (facts §3): 500/min moving window, 10 concurrent, batch budget."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from qbo_emulator import DEV_CLIENT_ID, AppRegistration, EmulatorConfig, LatencyConfig, LimitsConfig
from tests.emulator.helpers import Api, wait_until
from tests.fixtures.emulator import EmulatorHandle, ServerHandle

OTHER_APP = AppRegistration(client_id="other-app", client_secret="s", verifier_token="v")


async def burst(api: Api, count: int) -> list[httpx.Response]:
    return [await api.get(f"companyinfo/{api.realm}") for _ in range(count)]


async def test_a_naive_burst_of_600_gets_429s_with_qbos_xml_body(api: Api, emulator_client: httpx.AsyncClient) -> None:
    responses = await burst(api, 600)
    statuses = [r.status_code for r in responses]
    assert statuses[:500] == [200] * 500
    assert statuses[500:] == [429] * 100
    throttled = responses[-1]
    assert throttled.headers["content-type"].startswith("application/xml")
    assert '<Error code="3001"' in throttled.text
    assert "message=ThrottleExceeded; errorCode=003001; statusCode=429" in throttled.text
    assert "intuit_tid" in throttled.headers
    assert "retry-after" not in throttled.headers
    stats = (await emulator_client.get(f"/_admin/companies/{api.realm}/stats")).json()
    assert stats["throttled"] == 100
    assert stats["by_status"]["429"] == 100


async def test_the_window_moves_with_the_clock(emulator: EmulatorHandle, api: Api) -> None:
    await burst(api, 500)
    assert (await api.get(f"companyinfo/{api.realm}")).status_code == 429
    emulator.core.clock.advance(61)
    assert (await api.get(f"companyinfo/{api.realm}")).status_code == 200


@pytest.mark.parametrize(
    "emulator_config", [EmulatorConfig(limits=LimitsConfig(throttle_body="json", retry_after_s=30))]
)
async def test_json_body_and_retry_after_are_configurable(api: Api) -> None:
    throttled = (await burst(api, 501))[-1]
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "30"
    assert throttled.json()["Fault"]["Error"][0]["code"] == "3001"


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(apps=[*EmulatorConfig().apps, OTHER_APP])])
async def test_each_oauth_app_has_its_own_budget(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient, api: Api
) -> None:
    await burst(api, 500)
    assert (await api.get(f"companyinfo/{api.realm}")).status_code == 429
    other = Api(emulator_client, api.realm, emulator.issue_tokens(api.realm, client_id="other-app")["access_token"])
    assert (await other.get(f"companyinfo/{api.realm}")).status_code == 200


async def test_each_company_has_its_own_budget(
    emulator: EmulatorHandle, emulator_client: httpx.AsyncClient, api: Api
) -> None:
    await burst(api, 500)
    realm = emulator.create_company(name="Fresh")
    fresh = Api(emulator_client, realm, emulator.issue_tokens(realm, DEV_CLIENT_ID)["access_token"])
    assert (await fresh.get(f"companyinfo/{realm}")).status_code == 200


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(limits=LimitsConfig(enabled=False))])
async def test_limits_can_be_switched_off(api: Api) -> None:
    assert {r.status_code for r in await burst(api, 600)} == {200}


async def test_limits_can_be_changed_at_runtime(api: Api, emulator_client: httpx.AsyncClient) -> None:
    changed = await emulator_client.put("/_admin/limits", json={"requests_per_window": 5})
    assert changed.json()["requests_per_window"] == 5
    assert [r.status_code for r in await burst(api, 6)] == [200] * 5 + [429]


async def test_batch_requests_have_their_own_budget_of_120(api: Api) -> None:
    batch = {"BatchItemRequest": [{"bId": "q", "Query": "select * from Term"}]}
    statuses = [(await api.post("batch", batch)).status_code for _ in range(121)]
    assert statuses == [200] * 120 + [429]
    assert (await api.get(f"companyinfo/{api.realm}")).status_code == 200


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(latency=LatencyConfig(median_ms=800))])
async def test_the_eleventh_concurrent_request_gets_429(emulator_server: ServerHandle) -> None:
    realm = emulator_server.create_company(name="Concurrent")
    token = emulator_server.issue_tokens(realm)["access_token"]
    async with httpx.AsyncClient(base_url=emulator_server.base_url, timeout=30) as client:
        api = Api(client, realm, token)
        first_ten = [asyncio.create_task(api.get(f"companyinfo/{realm}")) for _ in range(10)]
        await wait_until(
            lambda: emulator_server.call(lambda: emulator_server.core.limiter.in_flight((realm, DEV_CLIENT_ID))) == 10
        )
        eleventh = await api.get(f"companyinfo/{realm}")
        assert eleventh.status_code == 429
        assert [r.status_code for r in await asyncio.gather(*first_ten)] == [200] * 10
        assert (await api.get(f"companyinfo/{realm}")).status_code == 200
