"""Single-flight refresh in one process, on SQLite and on PostgreSQL: 50 concurrent requests for an expired token
make exactly one refresh call reach the emulator and all get the same valid token; 401 reports force at most one
refresh per token; the proactive sweep refreshes ahead of expiry; a passing failure never loses a valid token."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from prometheus_client import REGISTRY

from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync.tokens import token_fingerprint
from tests.token_manager.harness import OAuthEmulator, connect, emulator_clock, running_token_manager

pytestmark = [pytest.mark.kafka]


def _refreshes(outcome: str) -> float:
    return REGISTRY.get_sample_value("qbsync_token_refreshes_total", {"outcome": outcome}) or 0.0


async def test_fifty_concurrent_requests_for_an_expired_token_make_one_refresh_call(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    database_settings: DatabaseSettings,
) -> None:
    realm = oauth_emulator.create_company()
    org = uuid.uuid4()
    async with running_token_manager(
        emulator=oauth_emulator,
        kafka=kafka_settings,
        topics=topic_settings,
        database=database_settings,
        clock=emulator_clock(oauth_emulator),
    ) as tm:
        await connect(tm.url, org)
        old = (await tm.token(org)).json()["access_token"]
        await oauth_emulator.advance_clock(3_700)  # the access token has expired (emulator and token-manager agree)
        oauth_emulator.recorder.delay_s = 0.3  # a slow Intuit: all 50 arrive while the one refresh is in flight
        before, successes = oauth_emulator.recorder.refreshes(), _refreshes("success")

        responses = await asyncio.gather(*(tm.token(org) for _ in range(50)))

        assert [r.status_code for r in responses] == [200] * 50
        tokens = {r.json()["access_token"] for r in responses}
        assert len(tokens) == 1, "all 50 got the same token"
        assert tokens != {old}
        assert oauth_emulator.recorder.refreshes() - before == 1, "exactly one refresh call reached the emulator"
        assert _refreshes("success") - successes == 1
        assert (await _company_info(oauth_emulator, realm, tokens.pop())).status_code == 200, "and it is valid"


async def test_concurrent_401_reports_of_one_token_force_exactly_one_refresh(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    oauth_emulator.create_company()
    org = uuid.uuid4()
    async with running_token_manager(
        emulator=oauth_emulator, kafka=kafka_settings, topics=topic_settings, database=sqlite_database_settings
    ) as tm:
        await connect(tm.url, org)
        rejected = (await tm.token(org)).json()["access_token"]
        report = {"fingerprint": token_fingerprint(rejected)}
        oauth_emulator.recorder.delay_s = 0.2
        before = oauth_emulator.recorder.refreshes()

        answers = await asyncio.gather(
            *(tm.api.post(f"/v1/organizations/{org}/token/unauthorized", json=report) for _ in range(50))
        )

        assert [a.status_code for a in answers] == [200] * 50
        fresh = {a.json()["access_token"] for a in answers}
        assert len(fresh) == 1
        assert rejected not in fresh
        assert oauth_emulator.recorder.refreshes() - before == 1

        late = await tm.api.post(f"/v1/organizations/{org}/token/unauthorized", json=report)
        assert late.json()["access_token"] in fresh, "a late report of the old token gets the new one"
        assert oauth_emulator.recorder.refreshes() - before == 1, "without another refresh"

        bad = await tm.api.post(f"/v1/organizations/{org}/token/unauthorized", json={"fingerprint": rejected})
        assert bad.status_code == 400, "the token itself is never accepted as a report"


async def test_a_report_of_the_current_token_refreshes_at_most_once_per_interval(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    oauth_emulator.create_company()
    org = uuid.uuid4()
    async with running_token_manager(
        emulator=oauth_emulator,
        kafka=kafka_settings,
        topics=topic_settings,
        database=sqlite_database_settings,
        unauthorized_refresh_min_interval_seconds=3600,
    ) as tm:
        await connect(tm.url, org)
        first = (await tm.token(org)).json()["access_token"]
        unauthorized = f"/v1/organizations/{org}/token/unauthorized"
        second = (await tm.api.post(unauthorized, json={"fingerprint": token_fingerprint(first)})).json()
        assert second["access_token"] != first
        again = (
            await tm.api.post(unauthorized, json={"fingerprint": token_fingerprint(second["access_token"])})
        ).json()
        assert again["access_token"] == second["access_token"], "a 401 storm does not become a refresh storm"
        assert oauth_emulator.recorder.refreshes() == 1


async def test_the_sweep_refreshes_ahead_of_expiry_and_requests_then_need_none(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    oauth_emulator.create_company()
    org, idle = uuid.uuid4(), uuid.uuid4()
    other_realm = oauth_emulator.create_company("Idle Co")
    async with running_token_manager(
        emulator=oauth_emulator,
        kafka=kafka_settings,
        topics=topic_settings,
        database=sqlite_database_settings,
        clock=emulator_clock(oauth_emulator),
    ) as tm:
        await connect(tm.url, org)
        await connect(tm.url, idle, realm_hint=other_realm)
        old = (await tm.token(org)).json()
        assert await tm.service.maintain() == 0, "nothing is due yet"
        await oauth_emulator.advance_clock(3_600 - 200)  # inside the 300 s margin, not expired
        assert await tm.service.maintain() == 2, "both connections refreshed proactively"
        assert oauth_emulator.recorder.refreshes() == 2
        new = (await tm.token(org)).json()
        assert new["access_token"] != old["access_token"]
        assert new["expires_in"] > 3_000
        assert oauth_emulator.recorder.refreshes() == 2, "the request found a fresh token"
        assert (await tm.status(org))["last_refresh_at"] is not None


async def test_a_passing_refresh_failure_keeps_handing_out_a_still_valid_token(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    oauth_emulator.create_company()
    org = uuid.uuid4()
    async with running_token_manager(
        emulator=oauth_emulator,
        kafka=kafka_settings,
        topics=topic_settings,
        database=sqlite_database_settings,
        clock=emulator_clock(oauth_emulator),
    ) as tm:
        await connect(tm.url, org)
        old = (await tm.token(org)).json()["access_token"]
        fault = await oauth_emulator.admin(
            "POST", "/faults", {"kind": "http_error", "operation": "token", "status": 503}
        )
        errors = _refreshes("error")
        await oauth_emulator.advance_clock(3_600 - 100)  # due, but valid for 100 s more

        kept = await tm.token(org)
        assert kept.status_code == 200
        assert kept.json()["access_token"] == old
        status = await tm.status(org)
        assert status["status"] == "connected"
        assert status["consecutive_refresh_failures"] == 1
        assert "HTTP 503" in status["last_error"]
        assert _refreshes("error") - errors == 1

        await oauth_emulator.advance_clock(200)  # now expired, Intuit still failing
        unavailable = await tm.token(org)
        assert unavailable.status_code == 503
        assert unavailable.json()["error"] == "refresh_unavailable"
        assert unavailable.headers["retry-after"] == "5"

        await oauth_emulator.admin("DELETE", f"/faults/{fault['id']}")
        recovered = await tm.token(org)
        assert recovered.status_code == 200
        assert recovered.json()["access_token"] != old
        status = await tm.status(org)
        assert (status["status"], status["consecutive_refresh_failures"], status["last_error"]) == (
            "connected",
            0,
            None,
        )


async def _company_info(emulator: OAuthEmulator, realm: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=emulator.base_url, timeout=30) as client:
        return await client.get(
            f"/v3/company/{realm}/companyinfo/{realm}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
