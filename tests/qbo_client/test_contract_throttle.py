"""Contract: a 1,000-request burst to one company through the client gets no 429; the same burst sent naively does.

Scaled time, honest ratios: QBO allows 500 requests per 60 s and 10 in flight. The emulator here allows 100 per
1 s window (the same moving-window rule, 12x faster so the test takes seconds, not minutes) and 10 in flight; the
client is configured exactly as in production relative to that limit: 90 % of the window (450/500) and 8 of 10
in flight. The naive sender is plain httpx with 20 concurrent requests and no pacing.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from qbo_emulator import EmulatorConfig
from qbo_emulator.config import LimitsConfig
from qbsync.qbo import QboClient, QboQuery
from tests.qbo_client.conftest import Live, client_settings
from tests.qbo_client.test_contract_errors import CountingTransport

WINDOW_S = 1.0
EMULATOR_LIMIT = 100  # per window; QBO: 500 per 60 s
CLIENT_BUDGET = 90  # per window; production default: 450 per 60 s
BURST = 1000

pytestmark = pytest.mark.slow


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        limits=LimitsConfig(requests_per_window=EMULATOR_LIMIT, window_s=WINDOW_S, concurrent_requests=10)
    )


async def test_client_burst_gets_no_429_and_naive_burst_does(live: Live) -> None:
    customer = await live.company.create("Customer", {"DisplayName": "Burst Target"}, request_id="burst-seed")
    await asyncio.sleep(WINDOW_S)  # let the seed request leave the window

    wire = CountingTransport()
    settings = client_settings(
        live.server.base_url,
        requests_per_window=CLIENT_BUDGET,
        batch_requests_per_window=CLIENT_BUDGET // 4,
        window_s=WINDOW_S,
        max_in_flight=8,
    )
    async with QboClient(settings, live.tokens, transport=wire) as client:
        company = client.company(live.organization_id)
        started = time.monotonic()
        reads = [company.read("Customer", customer["Id"]) for _ in range(BURST // 2)]
        queries = [company.count(QboQuery.select("Customer")) for _ in range(BURST // 2)]
        results = await asyncio.gather(*reads, *queries)
        elapsed = time.monotonic() - started
    assert len(results) == BURST
    assert len(wire.statuses) == BURST  # no in-place retries were needed
    assert wire.statuses.count(429) == 0
    assert (await live.stats())["throttled"] == 0
    rate = BURST / elapsed
    ceiling = EMULATOR_LIMIT / WINDOW_S
    print(
        f"\nclient burst: {BURST} requests in {elapsed:.1f}s = {rate:.1f}/s, {rate / ceiling:.0%} of the "
        f"{ceiling:.0f}/s ceiling (at QBO scale: {500 * rate / ceiling:.0f} of 500 per minute); "
        f"client budget {CLIENT_BUDGET / WINDOW_S:.0f}/s"
    )
    assert rate <= ceiling  # never faster than the ceiling (a correctness bound, not speed)

    await asyncio.sleep(WINDOW_S)
    token = (await live.tokens.get_grant(live.organization_id)).access_token
    gate = asyncio.Semaphore(20)
    statuses: list[int] = []

    async def naive_read(http: httpx.AsyncClient) -> None:
        async with gate:
            response = await http.get(
                f"/v3/company/{live.realm_id}/customer/{customer['Id']}",
                params={"minorversion": "75"},
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
            statuses.append(response.status_code)

    async with httpx.AsyncClient(base_url=live.server.base_url, timeout=30.0) as http:
        started = time.monotonic()
        await asyncio.gather(*(naive_read(http) for _ in range(BURST)))
        naive_elapsed = time.monotonic() - started
    throttled = statuses.count(429)
    print(f"naive burst: {BURST} requests in {naive_elapsed:.1f}s, {throttled} answered 429 ({statuses.count(200)} ok)")
    assert throttled > 0
    assert statuses.count(200) + throttled == BURST
