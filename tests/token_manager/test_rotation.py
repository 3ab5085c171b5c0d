"""Refresh-token rotation over many "days" with a compressed clock: token-manager reads the emulator's clock, the
test moves it a day at a time, and a sync service keeps calling QBO through ``QboClient`` + ``TokenManagerClient``.
The connection never breaks, and the refresh token stored (decrypted here from the raw row) is always the one the
emulator currently honours — across the 101-day rolling window, so only refreshing keeps it alive."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from prometheus_client import REGISTRY
from pydantic import SecretStr

from qbsync.qbo import QboClient, QboClientSettings
from qbsync.settings import DatabaseSettings, KafkaSettings, TokenManagerSettings, TopicSettings
from qbsync.tokens import TokenManagerClient
from tests.token_manager.harness import (
    ENCRYPTION_KEY,
    SERVICE_TOKEN,
    OAuthEmulator,
    connect,
    emulator_clock,
    running_token_manager,
)

pytestmark = [pytest.mark.kafka]

DAYS = 130  # beyond the 101-day rolling refresh window: the connection lives only because refreshing rolls it
HOUR = 3600


async def test_rotation_over_130_days_never_breaks_and_the_newest_refresh_token_is_stored(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    realm = oauth_emulator.create_company("Rolling Co")
    org = uuid.uuid4()
    fernet = Fernet(ENCRYPTION_KEY)
    async with running_token_manager(
        emulator=oauth_emulator,
        kafka=kafka_settings,
        topics=topic_settings,
        database=sqlite_database_settings,
        clock=emulator_clock(oauth_emulator),
    ) as tm:
        await connect(tm.url, org)
        tokens_client = TokenManagerClient(TokenManagerSettings(url=tm.url, service_token=SecretStr(SERVICE_TOKEN)))
        qbo = QboClient(QboClientSettings(base_url=oauth_emulator.base_url, read_max_attempts=1), tokens_client)
        stored_values: list[str] = []
        try:
            for day in range(DAYS):
                # mostly a day and a bit (the refresh rotates), sometimes less than a day (it must not rotate)
                await oauth_emulator.advance_clock(26 * HOUR if day % 4 else 20 * HOUR)
                if day % 3 == 0:
                    await tm.service.maintain()  # the proactive sweep finds the expired token first
                elif day % 3 == 1:
                    assert (await tm.token(org)).status_code == 200  # a token request finds it first
                # else: the sync service's cached token gets a 401 and its report forces the refresh

                info = await qbo.company(org).company_info()
                assert info["CompanyName"] == "Rolling Co", f"day {day}: QBO answered"

                row = await tm.raw_row(org)
                stored = fernet.decrypt(row.refresh_token_ciphertext.encode()).decode().split("\x1f", 1)[1]
                assert stored == oauth_emulator.current_refresh_token(realm), f"day {day}: the newest is stored"
                assert row.status == "connected"
                stored_values.append(stored)
        finally:
            await qbo.aclose()
            await tokens_client.aclose()

        changed = [day for day, (a, b) in enumerate(itertools.pairwise(stored_values), start=1) if a != b]
        assert changed == [day for day in range(1, DAYS) if day % 4], "rotated after every step over 24 h, only then"
        assert oauth_emulator.recorder.count("refresh_token", status=400) == 0, "never an invalid_grant"
        status = await tm.status(org)
        assert status["status"] == "connected"
        assert status["refresh_token_expiring_soon"] is False

        await tm.service.update_gauges()
        remaining = REGISTRY.get_sample_value("qbsync_refresh_token_min_expiry_seconds")
        assert remaining is not None
        assert timedelta(days=100) < timedelta(seconds=remaining) <= timedelta(seconds=8_726_400), "rolling window"
