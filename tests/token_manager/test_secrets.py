"""Secrets at rest and in logs: through a whole connection lifecycle (connect, refresh, rotation, 401 reports, loss,
reconnect, disconnect) with every relevant logger at DEBUG, no token value the emulator issued appears in any log
line; the database holds only Fernet ciphertext bound to its row and column — on SQLite not even the database
file's bytes contain a token; and an encryption-key rotation re-encrypts the stored tokens at start-up."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr
from sqlalchemy import text

from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync.tokens import token_fingerprint
from tests.token_manager.harness import (
    ENCRYPTION_KEY,
    OAuthEmulator,
    connect,
    emulator_clock,
    running_token_manager,
)

pytestmark = [pytest.mark.kafka]

TOKEN_COLUMNS = ("access_token_ciphertext", "refresh_token_ciphertext")


async def test_no_token_in_any_log_line_and_only_bound_ciphertext_in_the_database(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    database_settings: DatabaseSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    realm = oauth_emulator.create_company()
    other_realm = oauth_emulator.create_company("Other Co")
    org, other = uuid.uuid4(), uuid.uuid4()
    async with running_token_manager(
        emulator=oauth_emulator,
        kafka=kafka_settings,
        topics=topic_settings,
        database=database_settings,
        clock=emulator_clock(oauth_emulator),
    ) as tm:
        await connect(tm.url, org, realm_hint=realm)
        await connect(tm.url, other, realm_hint=other_realm)
        for _ in range(3):  # expiry refreshes and rotations
            await oauth_emulator.advance_clock(25 * 3600)
            await tm.service.maintain()
        current = (await tm.token(org)).json()["access_token"]
        await tm.api.post(
            f"/v1/organizations/{org}/token/unauthorized", json={"fingerprint": token_fingerprint(current)}
        )
        await oauth_emulator.admin("POST", f"/companies/{realm}/revoke")
        await oauth_emulator.advance_clock(3700)
        assert (await tm.token(org)).status_code == 409  # the loss
        await connect(tm.url, org, realm_hint=realm)  # the reconnect
        assert (await tm.api.post(f"/v1/organizations/{other}/disconnect")).status_code == 200

        issued = oauth_emulator.recorder.issued
        assert len(issued) >= 12, "the lifecycle issued many tokens"
        lines = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
        assert any("token_manager" in r.name for r in caplog.records), "token-manager's own DEBUG lines were captured"
        assert not [t for t in issued if any(t in line for line in lines)], "a token value reached a log line"

        async with tm.db.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM qbo_connections"))).mappings().all()
            outbox = (await conn.execute(text("SELECT record FROM connection_event_outbox"))).all()
        fernet = Fernet(ENCRYPTION_KEY)
        stored = 0
        for row in rows:
            for column in TOKEN_COLUMNS:
                value = row[column]
                if value is None:
                    continue
                stored += 1
                assert value.startswith("gAAAAA")
                bound, _, token = fernet.decrypt(value.encode()).decode().partition("\x1f")
                organization = uuid.UUID(str(row["organization_id"]))  # raw: hex text on SQLite, uuid on PostgreSQL
                assert bound == f"{organization}/{column.removesuffix('_ciphertext')}"
                assert token in issued
            for column, value in row.items():
                assert not any(t in str(value) for t in issued), f"{column} holds a token in clear"
        assert stored == 2, "the connected organization's pair (the disconnected one keeps none)"
        assert all(not any(t in str(r) for t in issued) for r in outbox)

    if database_settings.url is None:  # SQLite: not even the file's bytes (database and WAL) hold a token
        files = list(Path(database_settings.data_dir).glob("token-manager.db*"))
        assert files
        content = b"".join(f.read_bytes() for f in files)
        assert not [t for t in issued if t.encode() in content]


async def test_a_key_rotation_re_encrypts_stored_tokens_at_start(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    oauth_emulator.create_company()
    org = uuid.uuid4()
    old_key, new_key = ENCRYPTION_KEY, Fernet.generate_key().decode()
    common: dict[str, Any] = {
        "emulator": oauth_emulator,
        "kafka": kafka_settings,
        "topics": topic_settings,
        "database": sqlite_database_settings,
    }
    async with running_token_manager(**common, encryption_keys=(SecretStr(old_key),)) as tm:
        await connect(tm.url, org)
        token = (await tm.token(org)).json()["access_token"]
    async with running_token_manager(**common, encryption_keys=(SecretStr(new_key), SecretStr(old_key))) as tm:
        row = await tm.raw_row(org)
        for column in TOKEN_COLUMNS:
            Fernet(new_key).decrypt(getattr(row, column).encode())  # re-encrypted under the new key
            with pytest.raises(InvalidToken):
                Fernet(old_key).decrypt(getattr(row, column).encode())
        assert (await tm.token(org)).json()["access_token"] == token
    async with running_token_manager(**common, encryption_keys=(SecretStr(new_key),)) as tm:
        assert (await tm.token(org)).json()["access_token"] == token, "the old key can be dropped"
    async with running_token_manager(**common, encryption_keys=(SecretStr(Fernet.generate_key().decode()),)) as tm:
        unreadable = await tm.token(org)
        assert unreadable.status_code == 503, "a wrong key never hands out garbage"
        assert unreadable.json()["error"] == "refresh_unavailable"
