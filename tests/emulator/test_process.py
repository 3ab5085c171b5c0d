"""The emulator as its own process: the CLI, loopback-only binding, and a state file that survives restarts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from qbo_emulator import EmulatorConfig, EmulatorCore
from qbo_emulator.__main__ import build_config, parse_args
from qbo_emulator.accounting import Accounting
from qbo_emulator.entities import BY_NAME
from tests.fixtures.emulator import free_port, start_emulator_process, stop_emulator_process


def test_refuses_a_public_bind_without_allow_public() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qbo_emulator", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert b"--allow-public" in result.stderr


@pytest.mark.e2e
def test_process_serves_seeded_demo_and_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "qbo.sqlite"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_emulator_process(port, "--state-file", str(state), "--seed-demo", "1")
    try:
        companies = httpx.get(f"{base}/_admin/companies", timeout=10).json()
        assert [c["name"] for c in companies] == ["Demo Company"]
        realm = companies[0]["realm_id"]
        tokens = httpx.post(f"{base}/_admin/companies/{realm}/tokens", json={}, timeout=10).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json"}
        created = httpx.post(
            f"{base}/v3/company/{realm}/customer", json={"DisplayName": "Survivor"}, headers=headers, timeout=10
        ).json()["Customer"]
    finally:
        stop_emulator_process(process)
    process = start_emulator_process(port, "--state-file", str(state), "--seed-demo", "1")
    try:
        assert len(httpx.get(f"{base}/_admin/companies", timeout=10).json()) == 1  # loaded, not re-seeded
        again = httpx.get(f"{base}/v3/company/{realm}/customer/{created['Id']}", headers=headers, timeout=10)
        assert again.status_code == 200  # the access token survived too
        assert again.json()["Customer"] == created
        refreshed = httpx.post(
            f"{base}/oauth2/v1/tokens/bearer",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
            auth=("qbsync-dev-client", "qbsync-dev-secret"),
            timeout=10,
        )
        assert refreshed.status_code == 200
    finally:
        stop_emulator_process(process)


def test_state_file_round_trips_rows_indexes_and_tombstones(tmp_path: Path) -> None:
    config = EmulatorConfig(state_file=tmp_path / "state.sqlite")
    core = EmulatorCore(config)
    company = core.create_company(name="Persisted")
    ctx = core.context(company)
    accounting = Accounting(ctx)
    customer = accounting.create(BY_NAME["Customer"], {"DisplayName": "Kept"})
    invoice = accounting.create(
        BY_NAME["Invoice"],
        {
            "CustomerRef": {"value": customer["Id"]},
            "DocNumber": "K-1",
            "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 5}],
        },
    )
    accounting.delete(BY_NAME["Invoice"], {"Id": invoice["Id"], "SyncToken": "0"})
    core.commit(ctx)
    core.clock.advance(7 * 86_400)
    core.persist()
    assert core.state_file is not None
    core.state_file.close()

    reloaded = EmulatorCore(config)
    again = reloaded.company(company.realm_id)
    assert again is not None
    assert again.get("Customer", customer["Id"]) == company.get("Customer", customer["Id"])
    assert again.name_holder(again.name_key("Vendor", "kept")) == ("Customer", customer["Id"])
    assert [t.id for t in again.tombstones] == [invoice["Id"]]
    assert again.next_id(BY_NAME["Invoice"]) == str(int(invoice["Id"]) + 1)
    assert reloaded.clock.offset.total_seconds() >= 7 * 86_400  # the moved clock survives too
    assert reloaded.state_file is not None
    reloaded.state_file.close()


def test_cli_flags_map_to_the_configuration(tmp_path: Path) -> None:
    args = parse_args(
        [
            "--state-file",
            str(tmp_path / "s.sqlite"),
            "--seed-demo",
            "2",
            "--latency-median-ms",
            "40",
            "--latency-p99-ms",
            "400",
            "--no-limits",
            "--throttle-body",
            "json",
            "--webhook-compression",
            "0.01",
            "--refresh-grace-s",
            "86400",
        ]
    )
    config = build_config(args)
    assert config.state_file == tmp_path / "s.sqlite"
    assert config.seed_demo == 2
    assert (config.latency.median_ms, config.latency.p99_ms) == (40, 400)
    assert config.limits.enabled is False
    assert config.limits.throttle_body == "json"
    assert config.webhooks.compression == 0.01
    assert config.oauth.superseded_grace_s == 86_400
    assert parse_args([]).host == "127.0.0.1"
