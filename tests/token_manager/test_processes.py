"""token-manager as real processes (``python -m token_manager``): two replicas on one PostgreSQL database refresh an
organization exactly once; a process SIGKILLed in the middle of a refresh — after Intuit answered, before or after
the write — leaves the organization connected after restart (or, with strict rotation, reports the loss once)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import update

from qbo_emulator import EmulatorConfig
from qbo_emulator.config import OAuthConfig
from qbsync.persistence import Database
from qbsync.qbo import QboAuthLostError, QboClient, QboClientSettings
from qbsync.settings import DatabaseSettings, KafkaSettings, Settings, TokenManagerSettings, TopicSettings
from qbsync.tokens import TokenManagerClient, token_fingerprint
from tests.fixtures.emulator import free_port
from tests.integration.harness import Kafka, wait_for
from tests.token_manager.harness import (
    ENCRYPTION_KEY,
    SERVICE_TOKEN,
    OAuthEmulator,
    TokenManagerProcess,
    connect,
    connection_events,
    events_of,
    start_token_manager_process,
    token_manager_settings,
)
from token_manager.store import qbo_connections

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.e2e]

ROTATION_DUE_S = 25 * 3600  # the refresh token is older than Intuit's ~24 h rotation period: the next refresh rotates


@dataclass
class Replicas:
    emulator: OAuthEmulator
    kafka: KafkaSettings
    topics: TopicSettings
    database: DatabaseSettings
    tmp_path: Path
    processes: list[TokenManagerProcess]

    def settings_for(self, port: int) -> Settings:
        return token_manager_settings(
            emulator=self.emulator, port=port, kafka=self.kafka, topics=self.topics, database=self.database
        )

    def start(self, name: str, port: int | None = None) -> TokenManagerProcess:
        port = port or free_port()
        process = start_token_manager_process(self.settings_for(port), port, self.tmp_path / f"{name}.log")
        self.processes.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(p.log_text() for p in self.processes)

    def assert_no_token_in_logs(self) -> None:
        text = self.logs()
        assert self.emulator.recorder.issued, "the emulator issued tokens"
        leaked = [t for t in self.emulator.recorder.issued if t in text]
        assert not leaked, "a token value appears in a token-manager process log"


@pytest.fixture
def replicas(
    oauth_emulator: OAuthEmulator, kafka_settings: KafkaSettings, topic_settings: TopicSettings, tmp_path: Path
) -> Iterator[Replicas]:
    handle = Replicas(oauth_emulator, kafka_settings, topic_settings, DatabaseSettings(), tmp_path, [])
    try:
        yield handle
    finally:
        for process in handle.processes:
            process.stop()


@contextlib.asynccontextmanager
async def _database(settings: DatabaseSettings) -> AsyncIterator[Database]:
    """token-manager's database, opened by the test to read what the process wrote."""
    db = await Database.open("token-manager", settings)
    try:
        yield db
    finally:
        await db.close()


async def _stored(db: Database, organization_id: uuid.UUID) -> tuple[str, str, str]:
    """(access ciphertext, refresh token, access token) as the process stored them, read raw and decrypted here."""
    async with db.connect() as conn:
        row = (
            await conn.execute(qbo_connections.select().where(qbo_connections.c.organization_id == organization_id))
        ).one()
    fernet = Fernet(ENCRYPTION_KEY)
    refresh = fernet.decrypt(row.refresh_token_ciphertext.encode()).decode().split("\x1f", 1)[1]
    access = fernet.decrypt(row.access_token_ciphertext.encode()).decode().split("\x1f", 1)[1]
    return row.access_token_ciphertext, refresh, access


async def _expire_stored_access_token(db: Database, organization_id: uuid.UUID) -> None:
    """Make the stored access token look expired to every replica (as after an hour of real time)."""
    async with db.transaction() as conn:
        await conn.execute(
            update(qbo_connections)
            .where(qbo_connections.c.organization_id == organization_id)
            .values(access_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


async def test_two_processes_on_one_postgresql_database_refresh_exactly_once(
    replicas: Replicas, postgres_database_settings: DatabaseSettings
) -> None:
    replicas.database = postgres_database_settings
    emulator = replicas.emulator
    realm = emulator.create_company()
    org = uuid.uuid4()
    first = replicas.start("a")
    second = replicas.start("b")  # after the first migrated the schema
    await connect(first.url, org)
    await emulator.admin("POST", f"/companies/{realm}/expire-access-tokens")
    async with _database(postgres_database_settings) as db:
        await _expire_stored_access_token(db, org)
    emulator.recorder.delay_s = 0.5  # a slow Intuit: the other replica asks while the refresh is in flight
    before = emulator.recorder.refreshes()

    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:
        answers = await asyncio.gather(
            *(client.get(f"{replica.url}/v1/organizations/{org}/token") for replica in (first, second) * 10)
        )

    assert [a.status_code for a in answers] == [200] * 20
    tokens = {a.json()["access_token"] for a in answers}
    assert len(tokens) == 1, "both processes handed out the same token"
    assert emulator.recorder.refreshes() - before == 1, "exactly one refresh call reached the emulator"
    async with _database(postgres_database_settings) as db:
        _, refresh, access = await _stored(db, org)
    assert access in tokens
    assert refresh == emulator.current_refresh_token(realm)
    replicas.assert_no_token_in_logs()


@pytest.mark.parametrize(
    ("oauth_emulator_config", "survives"),
    [
        (EmulatorConfig(oauth=OAuthConfig(superseded_grace_s=86_400)), True),
        (EmulatorConfig(oauth=OAuthConfig(superseded_grace_s=0)), False),
    ],
    ids=["superseded-token-grace-24h", "strict-rotation"],
)
async def test_killed_after_intuit_rotated_before_the_write(
    replicas: Replicas, oauth_emulator_config: EmulatorConfig, survives: bool, database_settings: DatabaseSettings
) -> None:
    replicas.database = database_settings
    emulator = replicas.emulator
    realm = emulator.create_company()
    org = uuid.uuid4()
    port = free_port()
    process = replicas.start("before-write", port)
    await connect(process.url, org)
    async with _database(database_settings) as db:
        _, stored_refresh, access = await _stored(db, org)
    await emulator.advance_clock(ROTATION_DUE_S)  # the access token has expired at Intuit; the refresh rotates
    emulator.recorder.hold_next_refresh()

    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    async with httpx.AsyncClient(timeout=60, headers=headers) as client:
        report = asyncio.create_task(
            client.post(
                f"{process.url}/v1/organizations/{org}/token/unauthorized",
                json={"fingerprint": token_fingerprint(access)},
            )
        )
        assert await asyncio.to_thread(emulator.recorder.holding.wait, 30), "the refresh reached the emulator"
        assert emulator.current_refresh_token(realm) != stored_refresh, "Intuit rotated the refresh token"
        process.kill()  # after Intuit answered, before token-manager could write
        with contextlib.suppress(httpx.HTTPError):
            await report
    emulator.recorder.release.set()
    async with _database(database_settings) as db:
        assert (await _stored(db, org))[1] == stored_refresh, "the write never happened"

    restarted = replicas.start("before-write-restarted", port)
    async with _sync_service(restarted.url, emulator) as qbo:
        if survives:
            info = await qbo.company(org).company_info()
            assert info["CompanyName"] == "Sandbox Company_US_1", "QBO answered with the new token"
            status = await _status(restarted.url, org)
            assert status["status"] == "connected"
            async with _database(database_settings) as db:
                assert (await _stored(db, org))[1] == emulator.current_refresh_token(realm), "newest token stored"
        else:
            with pytest.raises(QboAuthLostError):
                await qbo.company(org).company_info()
            with pytest.raises(QboAuthLostError):  # asking again reports nothing new
                await qbo.company(org).company_info()
            status = await _status(restarted.url, org)
            assert status["status"] == "needs_reconnect"
            assert "invalid_grant" in status["last_error"]

    async with Kafka(replicas.kafka, replicas.topics) as kafka:
        events = await connection_events(kafka, expect=1 if survives else 2)
    # the killed process may have sent QboConnected without deleting it from its outbox: the restart re-sends it
    # with the same event_id (at least once), so events are counted by id here
    assert len(events_of(events, "QboConnected", org, distinct=True)) == 1
    lost = events_of(events, "QboConnectionLost", org, distinct=True)
    assert len(lost) == (0 if survives else 1), "a loss is reported exactly once, never silently"
    if lost:
        assert lost[0].payload.reason == "refresh_failed"
        assert lost[0].payload.realm_id == realm
    replicas.assert_no_token_in_logs()


@pytest.mark.parametrize("oauth_emulator_config", [EmulatorConfig(oauth=OAuthConfig(superseded_grace_s=0))])
async def test_killed_right_after_the_write_keeps_the_rotated_token(
    replicas: Replicas, oauth_emulator_config: EmulatorConfig, database_settings: DatabaseSettings
) -> None:
    replicas.database = database_settings
    emulator = replicas.emulator
    realm = emulator.create_company()
    org = uuid.uuid4()
    port = free_port()
    process = replicas.start("after-write", port)
    await connect(process.url, org)
    db = await Database.open("token-manager", database_settings)
    before, stored_refresh, access = await _stored(db, org)
    await emulator.advance_clock(ROTATION_DUE_S)

    headers = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(db.close)
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=60, headers=headers))
        report = asyncio.create_task(
            client.post(
                f"{process.url}/v1/organizations/{org}/token/unauthorized",
                json={"fingerprint": token_fingerprint(access)},
            )
        )

        async def written() -> bool:
            return (await _stored(db, org))[0] != before

        await wait_for(written, timeout=30, interval=0.005)
        process.kill()  # the commit happened; the answer may or may not have left
        with contextlib.suppress(httpx.HTTPError):
            await report
        rotated = emulator.current_refresh_token(realm)
        assert rotated != stored_refresh
        assert (await _stored(db, org))[1] == rotated, "the rotated refresh token was stored"

    restarted = replicas.start("after-write-restarted", port)
    async with _sync_service(restarted.url, emulator) as qbo:
        assert (await qbo.company(org).company_info())["CompanyName"]
    await emulator.advance_clock(2 * 3600)
    async with _sync_service(restarted.url, emulator) as qbo:
        assert (await qbo.company(org).company_info())["CompanyName"], "refreshing with the stored token works"
    assert (await _status(restarted.url, org))["status"] == "connected"
    replicas.assert_no_token_in_logs()


@contextlib.asynccontextmanager
async def _sync_service(url: str, emulator: OAuthEmulator) -> AsyncIterator[QboClient]:
    """What a sync service holds: the QBO client over token-manager's client."""
    tokens = TokenManagerClient(TokenManagerSettings(url=url, service_token=SecretStr(SERVICE_TOKEN)))
    qbo = QboClient(QboClientSettings(base_url=emulator.base_url, read_max_attempts=1), tokens)
    try:
        yield qbo
    finally:
        await qbo.aclose()
        await tokens.aclose()


async def _status(url: str, organization_id: uuid.UUID) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}) as client:
        response = await client.get(f"{url}/v1/organizations/{organization_id}/connection")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
