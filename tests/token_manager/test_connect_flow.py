"""The connect flow end to end against the emulator over real HTTP, a real broker and a real database: consent
link → emulator consent → callback → tokens stored encrypted → ``QboConnected`` on the topic; and every way a
callback must be refused (forged, tampered, expired, replayed state; a company held by another organization; a
realm the token does not belong to; a denied consent) leaving nothing stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest
from cryptography.fernet import Fernet

from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from tests.integration.harness import Kafka
from tests.token_manager.harness import (
    ENCRYPTION_KEY,
    SERVICE_TOKEN,
    MovableClock,
    OAuthEmulator,
    callback,
    connect,
    connection_events,
    consent,
    events_of,
    running_token_manager,
)

pytestmark = [pytest.mark.kafka]


async def test_connect_stores_tokens_encrypted_and_publishes_qbo_connected(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    realm = oauth_emulator.create_company("Acme Bakery Ltd")
    org = uuid.uuid4()
    async with running_token_manager(
        emulator=oauth_emulator, kafka=kafka_settings, topics=topic_settings, database=sqlite_database_settings
    ) as tm:
        async with httpx.AsyncClient(timeout=30) as browser:
            refused = await browser.get(f"{tm.url}/connect/{org}")
            assert refused.status_code == 401, "starting a connect needs the service credential"
            start = await browser.get(f"{tm.url}/connect/{org}", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
            assert start.status_code == 302
            authorize = urlsplit(start.headers["location"])
            params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
            assert urlunsplit((authorize.scheme, authorize.netloc, authorize.path, "", "")) == (
                f"{oauth_emulator.base_url}/connect/oauth2"
            ), "the authorize endpoint comes from the discovery document"
            assert params["client_id"] == "qbsync-dev-client"
            assert params["response_type"] == "code"
            assert params["scope"] == "com.intuit.quickbooks.accounting"
            assert params["redirect_uri"] == f"{tm.url}/oauth/callback"
            assert params["state"].startswith("v1.")
            consented = await browser.get(start.headers["location"])
            assert consented.status_code == 302
            done = await browser.get(consented.headers["location"])
        assert done.status_code == 200
        assert "QuickBooks connected" in done.text
        assert "Acme Bakery Ltd" in done.text
        assert done.headers["cache-control"] == "no-store"
        assert done.headers["referrer-policy"] == "no-referrer"

        status = await tm.status(org)
        now = datetime.now(UTC)
        assert status["status"] == "connected"
        assert status["realm_id"] == realm
        assert status["company_name"] == "Acme Bakery Ltd"
        assert _near(status["access_token_expires_at"], now + timedelta(hours=1))
        assert _near(status["refresh_token_expires_at"], now + timedelta(seconds=8_726_400))
        assert _near(status["refresh_token_hard_expires_at"], now + timedelta(days=5 * 365)), "hard cap requested"
        assert not any(
            "token" in key and "expires" not in key for key in status if key != "refresh_token_expiring_soon"
        )

        row = await tm.raw_row(org)
        fernet = Fernet(ENCRYPTION_KEY)
        issued = oauth_emulator.recorder.issued
        for column in ("access_token_ciphertext", "refresh_token_ciphertext"):
            stored = getattr(row, column)
            assert stored.startswith("gAAAAA"), "a Fernet token"
            assert not any(token in stored for token in issued), "no token in clear"
            plaintext = fernet.decrypt(stored.encode()).decode()
            assert plaintext.split("\x1f", 1)[1] in issued, "it decrypts to the token the emulator issued"

        handed = await tm.token(org)
        assert handed.status_code == 200
        body = handed.json()
        assert set(body) == {"organization_id", "realm_id", "access_token", "expires_at", "expires_in"}
        assert body["realm_id"] == realm
        assert body["access_token"] in issued
        assert handed.headers["cache-control"] == "no-store"
        info = await _company_info(oauth_emulator, realm, body["access_token"])
        assert info.status_code == 200, "the handed-out token works against QBO"

    async with Kafka(kafka_settings, topic_settings) as kafka:
        events = await connection_events(kafka, expect=1)
    connected = events_of(events, "QboConnected", org)
    assert len(connected) == 1
    assert connected[0].entity_id == org
    assert connected[0].entity_version == 1
    assert connected[0].payload.realm_id == realm
    assert connected[0].payload.company_name == "Acme Bakery Ltd"
    assert connected[0].payload.environment == "emulator"
    raw = b"".join(str(e.model_dump()).encode() for e in events)
    assert not any(token.encode() in raw for token in oauth_emulator.recorder.issued), "no token on Kafka"


@pytest.mark.parametrize("case", ["forged", "garbage", "tampered_org", "tampered_expiry", "expired"])
async def test_a_callback_with_a_bad_state_is_refused_and_stores_nothing(
    case: str,
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    oauth_emulator.create_company()
    org = uuid.uuid4()
    clock = MovableClock()
    async with running_token_manager(
        emulator=oauth_emulator,
        kafka=kafka_settings,
        topics=topic_settings,
        database=sqlite_database_settings,
        clock=clock,
    ) as tm:
        given = await consent(tm.url, org)
        nonce, org_hex, expiry, mac = given.state.split(".")[1:]
        other = uuid.uuid4()
        states = {
            "forged": f"v1.{nonce}.{org_hex}.{expiry}.{'A' * 43}",
            "garbage": "not-a-state",
            "tampered_org": f"v1.{nonce}.{other.hex}.{expiry}.{mac}",
            "tampered_expiry": f"v1.{nonce}.{org_hex}.{int(expiry) + 86_400}.{mac}",
            "expired": given.state,
        }
        if case == "expired":
            clock.advance(tm.settings.token_manager.state_ttl_seconds + 1)
        bad = given.callback_url.replace(f"state={given.state}", f"state={states[case]}")
        refused = await callback(bad, json_answer=True)
        assert refused.status_code == 400
        expected_reason = {
            "forged": "bad_signature",
            "garbage": "malformed",
            "tampered_org": "bad_signature",
            "tampered_expiry": "bad_signature",
            "expired": "expired",
        }[case]
        assert refused.json() == {
            "error": "invalid_state",
            "message": refused.json()["message"],
            "reason": expected_reason,
        }
        page = await callback(bad)
        assert page.status_code == 400
        assert "QuickBooks not connected" in page.text
        assert given.code not in page.text, "nothing from the URL is echoed"
        assert states[case] not in page.text

        for candidate in (org, other):
            missing = await tm.api.get(f"/v1/organizations/{candidate}/connection")
            assert missing.status_code == 404, "nothing was stored"
        assert oauth_emulator.recorder.count("authorization_code") == 0, "the code never reached Intuit"
    async with Kafka(kafka_settings, topic_settings) as kafka:
        assert await connection_events(kafka, expect=0) == []


async def test_a_replayed_callback_is_refused_without_a_second_code_exchange(
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
        given = await consent(tm.url, org)
        first = await callback(given.callback_url)
        assert first.status_code == 200
        stored = await tm.raw_row(org)
        replay = await callback(given.callback_url, json_answer=True)
        assert replay.status_code == 400
        assert replay.json()["reason"] == "replayed"
        assert oauth_emulator.recorder.count("authorization_code") == 1
        after = await tm.raw_row(org)
        assert after.refresh_token_ciphertext == stored.refresh_token_ciphertext, "the stored connection is untouched"
    async with Kafka(kafka_settings, topic_settings) as kafka:
        events = await connection_events(kafka, expect=1)
    assert len(events_of(events, "QboConnected", org)) == 1


async def test_a_company_connected_to_another_organization_is_refused(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    realm = oauth_emulator.create_company()
    owner, intruder = uuid.uuid4(), uuid.uuid4()
    async with running_token_manager(
        emulator=oauth_emulator, kafka=kafka_settings, topics=topic_settings, database=sqlite_database_settings
    ) as tm:
        assert await connect(tm.url, owner, realm_hint=realm) == realm
        owner_row = await tm.raw_row(owner)
        given = await consent(tm.url, intruder, realm_hint=realm)
        refused = await callback(given.callback_url, json_answer=True)
        assert refused.status_code == 409
        assert refused.json()["error"] == "realm_taken"
        assert (await tm.api.get(f"/v1/organizations/{intruder}/connection")).status_code == 404
        assert (await tm.raw_row(owner)) == owner_row, "the rightful organization is untouched"
        token = (await tm.token(owner)).json()["access_token"]
        assert (await _company_info(oauth_emulator, realm, token)).status_code == 200, "and still connected"
    async with Kafka(kafka_settings, topic_settings) as kafka:
        events = await connection_events(kafka, expect=1)
    assert events_of(events, "QboConnected", intruder) == []


async def test_reconnecting_to_another_company_needs_a_disconnect_first(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    first = oauth_emulator.create_company("First Co")
    second = oauth_emulator.create_company("Second Co")
    org = uuid.uuid4()
    async with running_token_manager(
        emulator=oauth_emulator, kafka=kafka_settings, topics=topic_settings, database=sqlite_database_settings
    ) as tm:
        await connect(tm.url, org, realm_hint=first)
        given = await consent(tm.url, org, realm_hint=second)
        refused = await callback(given.callback_url, json_answer=True)
        assert refused.status_code == 409
        assert refused.json()["error"] == "realm_mismatch"
        assert (await tm.status(org))["realm_id"] == first

        again = await consent(tm.url, org, realm_hint=first)
        reconnected = await callback(again.callback_url, json_answer=True)
        assert reconnected.status_code == 200
        assert reconnected.json()["reconnected"] is True

        disconnected = await tm.api.post(f"/v1/organizations/{org}/disconnect")
        assert disconnected.status_code == 200
        assert await connect(tm.url, org, realm_hint=second) == second
        status = await tm.status(org)
        assert (status["status"], status["realm_id"], status["company_name"]) == ("connected", second, "Second Co")
        # the first company is free again for another organization
        assert await connect(tm.url, uuid.uuid4(), realm_hint=first) == first


async def test_a_realm_id_changed_in_the_callback_url_is_refused(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    consented = oauth_emulator.create_company("Mine")
    someone_else = oauth_emulator.create_company("Theirs")
    org = uuid.uuid4()
    async with running_token_manager(
        emulator=oauth_emulator, kafka=kafka_settings, topics=topic_settings, database=sqlite_database_settings
    ) as tm:
        given = await consent(tm.url, org, realm_hint=consented)
        forged = given.callback_url.replace(f"realmId={consented}", f"realmId={someone_else}")
        refused = await callback(forged, json_answer=True)
        assert refused.status_code == 409
        assert refused.json()["error"] == "realm_unverified"
        assert (await tm.api.get(f"/v1/organizations/{org}/connection")).status_code == 404
        # the other company stays free for its rightful organization
        assert await connect(tm.url, uuid.uuid4(), realm_hint=someone_else) == someone_else


async def test_a_denied_consent_stores_nothing(
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
        await oauth_emulator.admin("POST", "/oauth/consent", {"deny": True})
        async with httpx.AsyncClient(timeout=30) as browser:
            start = await browser.get(f"{tm.url}/connect/{org}", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"})
            answer = await browser.get(start.headers["location"])
            assert "error=access_denied" in answer.headers["location"]
            done = await browser.get(answer.headers["location"], headers={"Accept": "application/json"})
        assert done.status_code == 400
        assert done.json()["error"] == "access_denied"
        assert (await tm.api.get(f"/v1/organizations/{org}/connection")).status_code == 404
        assert oauth_emulator.recorder.count("authorization_code") == 0


def _near(value: str, expected: datetime, tolerance: timedelta = timedelta(minutes=2)) -> bool:
    return abs(datetime.fromisoformat(value) - expected) < tolerance


async def _company_info(emulator: OAuthEmulator, realm: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=emulator.base_url, timeout=30) as client:
        return await client.get(
            f"/v3/company/{realm}/companyinfo/{realm}",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
