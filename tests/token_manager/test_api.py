"""The access API's edges: the service credential, organizations that never connected, disconnect (revoked at
Intuit, announced once), the status listing, and the metrics (by status, never by organization)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import REGISTRY

from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync.tokens import token_fingerprint
from tests.integration.harness import Kafka
from tests.token_manager.harness import (
    OAuthEmulator,
    connect,
    connection_events,
    events_of,
    running_token_manager,
)

pytestmark = [pytest.mark.kafka]


async def test_every_endpoint_but_the_callback_requires_the_service_credential(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    org = uuid.uuid4()
    async with running_token_manager(
        emulator=oauth_emulator, kafka=kafka_settings, topics=topic_settings, database=sqlite_database_settings
    ) as tm:
        requests = [
            ("GET", f"/connect/{org}"),
            ("GET", f"/v1/organizations/{org}/token"),
            ("POST", f"/v1/organizations/{org}/token/unauthorized"),
            ("GET", f"/v1/organizations/{org}/connection"),
            ("POST", f"/v1/organizations/{org}/disconnect"),
            ("GET", "/v1/connections"),
        ]
        credentials = [
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {tm.settings.token_manager.service_token.get_secret_value()}"},
            {"Authorization": "Bearer " + tm.settings.token_manager.service_token.get_secret_value()[:-1]},
        ]
        async with httpx.AsyncClient(base_url=tm.url, timeout=30) as anonymous:
            for method, path in requests:
                for headers in credentials:
                    response = await anonymous.request(method, path, headers=headers)
                    assert response.status_code == 401, (method, path, headers)
                    assert response.json()["error"] == "unauthenticated"
                    assert response.headers["www-authenticate"] == "Bearer"


async def test_an_organization_that_never_connected(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    org = uuid.uuid4()
    async with running_token_manager(
        emulator=oauth_emulator, kafka=kafka_settings, topics=topic_settings, database=sqlite_database_settings
    ) as tm:
        token = await tm.token(org)
        assert token.status_code == 409, "the sync services park its work"
        assert token.json()["error"] == "not_connected"
        report = await tm.api.post(f"/v1/organizations/{org}/token/unauthorized", json={"fingerprint": "0" * 32})
        assert report.status_code == 409
        assert (await tm.api.get(f"/v1/organizations/{org}/connection")).status_code == 404
        assert (await tm.api.post(f"/v1/organizations/{org}/disconnect")).status_code == 404
        assert (await tm.api.get("/v1/connections")).json() == {"connections": []}
        bad = await tm.api.post(f"/v1/organizations/{org}/token/unauthorized", content=b"not json")
        assert bad.status_code == 400


async def test_disconnect_revokes_at_intuit_and_announces_the_loss_once(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    database_settings: DatabaseSettings,
) -> None:
    realm = oauth_emulator.create_company("Leaving Co")
    org = uuid.uuid4()
    async with running_token_manager(
        emulator=oauth_emulator, kafka=kafka_settings, topics=topic_settings, database=database_settings
    ) as tm:
        await connect(tm.url, org)
        token = (await tm.token(org)).json()["access_token"]
        listed = (await tm.api.get("/v1/connections")).json()["connections"]
        assert [(c["organization_id"], c["status"], c["company_name"]) for c in listed] == [
            (str(org), "connected", "Leaving Co")
        ]

        done = await tm.api.post(f"/v1/organizations/{org}/disconnect")
        assert done.status_code == 200
        assert done.json() == {"organization_id": str(org), "status": "disconnected", "revoked_at_intuit": True}
        assert oauth_emulator.call(lambda: all(g.revoked for g in oauth_emulator.core.oauth.grants.values()))
        async with httpx.AsyncClient(base_url=oauth_emulator.base_url, timeout=30) as qbo:
            refused = await qbo.get(
                f"/v3/company/{realm}/companyinfo/{realm}",
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
        assert refused.status_code == 401, "the grant is revoked at Intuit"

        after = await tm.token(org)
        assert after.status_code == 409
        assert after.json()["error"] == "disconnected"
        status = await tm.status(org)
        assert status["status"] == "disconnected"
        assert status["access_token_expires_at"] is None
        row = await tm.raw_row(org)
        assert (row.access_token_ciphertext, row.refresh_token_ciphertext, row.active_realm_id) == (None, None, None)
        again = await tm.api.post(f"/v1/organizations/{org}/disconnect")
        assert again.status_code == 200

    async with Kafka(kafka_settings, topic_settings) as kafka:
        events = await connection_events(kafka, expect=2)
    lost = events_of(events, "QboConnectionLost", org)
    assert len(lost) == 1, "a second disconnect announces nothing new"
    assert lost[0].payload.reason == "disconnected"
    assert [e.entity_version for e in events] == [1, 2], "a per-organization counter versions the events"


async def test_metrics_count_connections_by_status_and_warn_of_expiring_refresh_tokens(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    realms = [oauth_emulator.create_company(f"Co {i}") for i in range(3)]
    orgs = [uuid.uuid4() for _ in realms]
    async with running_token_manager(
        emulator=oauth_emulator,
        kafka=kafka_settings,
        topics=topic_settings,
        database=sqlite_database_settings,
        refresh_token_warning_days=200,  # longer than the 101-day window: every connection is "expiring soon"
    ) as tm:
        for org, realm in zip(orgs, realms, strict=True):
            await connect(tm.url, org, realm_hint=realm)
        await oauth_emulator.admin("POST", f"/companies/{realms[0]}/revoke")
        await oauth_emulator.admin("POST", f"/companies/{realms[0]}/expire-access-tokens")
        await tm.api.post(f"/v1/organizations/{orgs[1]}/disconnect")
        lost = await tm.api.post(
            f"/v1/organizations/{orgs[0]}/token/unauthorized",
            json={"fingerprint": token_fingerprint((await tm.token(orgs[0])).json()["access_token"])},
        )
        assert lost.status_code == 409
        await tm.service.maintain()

        def gauge(name: str, **labels: str) -> float | None:
            return REGISTRY.get_sample_value(name, labels)

        assert gauge("qbsync_connections", status="connected") == 1
        assert gauge("qbsync_connections", status="needs_reconnect") == 1
        assert gauge("qbsync_connections", status="disconnected") == 1
        assert gauge("qbsync_connections_expiring_soon") == 1
        remaining = gauge("qbsync_refresh_token_min_expiry_seconds")
        assert remaining is not None
        ends = datetime.now(UTC) + timedelta(seconds=remaining)
        assert abs(ends - (datetime.now(UTC) + timedelta(seconds=8_726_400))) < timedelta(minutes=2)
        status = await tm.status(orgs[2])
        assert status["refresh_token_expiring_soon"] is True

        exposition = (await tm.api.get("/metrics")).text
        token_lines = [line for line in exposition.splitlines() if "qbsync_connections" in line or "token" in line]
        assert token_lines
        for line in token_lines:
            assert not any(str(org) in line for org in orgs), "never an organization label"
            assert not any(realm in line for realm in realms), "never a realm label"
