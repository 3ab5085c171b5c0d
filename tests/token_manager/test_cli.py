"""``qbsync connect`` / ``connections`` / ``disconnect`` against a running token-manager and the emulator."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from typer.testing import CliRunner

from qbsync.settings import DatabaseSettings, KafkaSettings, TopicSettings
from qbsync_cli.main import app
from tests.fixtures.emulator import free_port
from tests.token_manager.harness import SERVICE_TOKEN, OAuthEmulator, running_token_manager

pytestmark = [pytest.mark.kafka]


async def _qbsync(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI in a thread: token-manager serves on this test's event loop meanwhile."""
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env={"COLUMNS": "250", **env})
    return result.exit_code, result.output


async def test_connect_follow_lists_and_disconnects_without_a_browser(
    oauth_emulator: OAuthEmulator,
    kafka_settings: KafkaSettings,
    topic_settings: TopicSettings,
    sqlite_database_settings: DatabaseSettings,
) -> None:
    realm = oauth_emulator.create_company("Headless Co")
    org = uuid.uuid4()
    async with running_token_manager(
        emulator=oauth_emulator, kafka=kafka_settings, topics=topic_settings, database=sqlite_database_settings
    ) as tm:
        env = {"QBSYNC_TOKEN_MANAGER__URL": tm.url, "QBSYNC_TOKEN_MANAGER__SERVICE_TOKEN": SERVICE_TOKEN}

        code, output = await _qbsync("connect", str(org), env=env)
        assert code == 0, output
        assert f"{oauth_emulator.base_url}/connect/oauth2?" in output
        assert "state=v1." in output
        assert (await tm.api.get(f"/v1/organizations/{org}/connection")).status_code == 404, "only a link so far"

        code, output = await _qbsync("connect", str(org), "--follow", env=env)
        assert code == 0, output
        assert f"{org} connected to QuickBooks company {realm} Headless Co" in output

        code, output = await _qbsync("connections", "--json", env=env)
        assert code == 0, output
        listed = json.loads(output)["connections"]
        assert [(c["organization_id"], c["status"], c["realm_id"]) for c in listed] == [(str(org), "connected", realm)]
        code, output = await _qbsync("connections", env=env)
        assert code == 0, output
        assert "Headless Co" in output
        assert "1 connection(s)" in output
        issued = oauth_emulator.recorder.issued
        assert not any(token in output for token in issued), "the CLI never prints a token"

        code, output = await _qbsync("disconnect", str(org), env=env)
        assert code == 0, output
        assert "disconnected (revoked at Intuit)" in output
        assert (await tm.status(org))["status"] == "disconnected"

        code, output = await _qbsync("disconnect", str(uuid.uuid4()), env=env)
        assert code == 1
        assert "never connected" in output

        wrong = {**env, "QBSYNC_TOKEN_MANAGER__SERVICE_TOKEN": "not-the-credential"}
        code, output = await _qbsync("connections", env=wrong)
        assert code == 1
        assert "service credential" in output

    gone = {"QBSYNC_TOKEN_MANAGER__URL": f"http://127.0.0.1:{free_port()}"}
    code, output = await _qbsync("connections", env=gone)
    assert code == 1
    assert "unreachable" in output
